#!/usr/bin/env node
// Packs the package as it would be published and installs the tarball into a
// fresh project, as a user would, for test/unit/package.test.ts (on the host)
// and test/integration/package.test.ts (in the kernel VM, which sees the
// repository read-only: hence out/ rather than /tmp). npm test runs it once.
//
// Usage: node scripts/pack-test.js [DIR]   (default out/pack-test)
// DIR gets the tarball, `npm pack --json`'s report (pack.json), the project
// (consumer/, with node_modules/rxrpc) and result.json: { ok, ... }. Exits
// non-zero, with the reason in result.json and on stderr, if a step fails.
//
// The install runs offline, from the npm cache the repository's own install
// filled. npm resolves a new dependency from the registry's full package
// documents, which that install did not fetch (it had a lockfile), so the
// project gets a lockfile too: the same versions as the repository's, the
// tarball's entry from the tarball itself.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const npm = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
  ? [process.execPath, process.env.npm_execpath]
  : ['npm'];

class StepError extends Error {
  constructor(step, message) {
    super(`${step}: ${message}`);
    this.step = step;
  }
}

function runNpm(step, args, cwd, log) {
  const r = spawnSync(npm[0], [...npm.slice(1), ...args], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  fs.appendFileSync(log, `$ npm ${args.join(' ')}  (in ${cwd})\n${r.stdout}${r.stderr}\n`);
  if (r.status !== 0) {
    const tail = `${r.stdout}${r.stderr}`.trim().split('\n').slice(-25).join('\n');
    throw new StepError(step, `npm ${args[0]} failed (status ${r.status ?? r.signal}); log: ${log}\n${tail}`);
  }
  return r.stdout;
}

// The lockfile entries for `names` and everything they depend on, from the repository's lockfile.
function lockedClosure(lock, names) {
  const out = {};
  const queue = [...names];
  while (queue.length) {
    const name = queue.shift();
    const key = `node_modules/${name}`;
    if (out[key]) continue;
    const entry = lock.packages[key];
    if (!entry) throw new StepError('lockfile', `${name} is not in the repository's package-lock.json (run npm install)`);
    const { dev, optional, peer, devOptional, ...kept } = entry;
    out[key] = kept;
    queue.push(...Object.keys(entry.dependencies ?? {}));
  }
  return out;
}

function packAndInstall(dir = path.join(root, 'out', 'pack-test')) {
  const started = Date.now();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const log = path.join(dir, 'npm.log');
  const result = { ok: false, dir };
  try {
    // npm pack runs prepack (dist/) and prepare, as it does before publishing.
    const out = runNpm('pack', ['pack', '--json', '--pack-destination', dir], root, log);
    // The report is the JSON array at the end of stdout, after what the scripts printed.
    const packed = JSON.parse(out.slice(out.search(/^\[/m)))[0];
    fs.writeFileSync(path.join(dir, 'pack.json'), JSON.stringify(packed, null, 2));
    result.tarball = path.join(dir, packed.filename);
    result.packSeconds = (Date.now() - started) / 1000;

    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
    const typesNode = lock.packages['node_modules/@types/node'].version;
    const consumer = path.join(dir, 'consumer');
    fs.mkdirSync(consumer);
    const spec = `file:../${packed.filename}`;
    const manifest = {
      name: 'rxrpc-pack-test',
      version: '1.0.0',
      private: true,
      dependencies: { rxrpc: spec },
      // A TypeScript project brings its own @types/node (rxrpc's peer dependency is optional).
      devDependencies: { '@types/node': typesNode },
    };
    fs.writeFileSync(path.join(consumer, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const pick = (o, keys) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    const packages = {
      '': pick(manifest, ['name', 'version', 'dependencies', 'devDependencies']),
      'node_modules/rxrpc': {
        version: packed.version,
        resolved: spec,
        integrity: packed.integrity,
        hasInstallScript: true,
        // npm ci links node_modules/.bin/rxrpc from this entry's bin.
        ...pick(pkg, ['license', 'bin', 'dependencies', 'peerDependencies', 'peerDependenciesMeta', 'engines']),
      },
      ...lockedClosure(lock, [...Object.keys(pkg.dependencies ?? {}), '@types/node']),
    };
    fs.writeFileSync(
      path.join(consumer, 'package-lock.json'),
      `${JSON.stringify({ name: manifest.name, version: manifest.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
    );
    const installStarted = Date.now();
    // The install script builds the addon with the node-gyp npm provides (npm_config_node_gyp).
    runNpm('install', ['ci', '--offline', '--no-audit', '--no-fund'], consumer, log);
    result.installSeconds = (Date.now() - installStarted) / 1000;
    result.consumer = consumer;
    result.installed = path.join(consumer, 'node_modules', 'rxrpc');
    result.ok = true;
  } catch (err) {
    result.step = err.step ?? 'pack-test';
    result.error = err.message;
  }
  result.seconds = (Date.now() - started) / 1000;
  fs.writeFileSync(path.join(dir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

module.exports = { packAndInstall };

if (require.main === module) {
  const result = packAndInstall(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  if (!result.ok) {
    console.error(`pack-test: ${result.error}`);
    process.exit(1);
  }
  console.log(`pack-test: ${path.basename(result.tarball)} packed in ${result.packSeconds} s, ` +
    `installed in ${result.installSeconds} s into ${result.consumer}`);
}
