#!/usr/bin/env node
// The addon built with AddressSanitizer and UndefinedBehaviorSanitizer
// (binding.gyp, rxrpc_sanitize=1) in build-sanitize/, never in build/: the
// normal addon stays as it is. One switch: RXRPC_SANITIZE=1 npm run build
// (or npm install); or npm run build:sanitize. Prints the path of the
// sanitized rxrpc.node.
//
// Running it: Node itself is not instrumented, so ASan's runtime must be
// preloaded, and the library pointed at the other build. `node
// scripts/sanitize.js --env [LOGDIR]` prints the variables for that
// (RXRPC_ADDON, LD_PRELOAD, ASAN_OPTIONS, UBSAN_OPTIONS; reports to files in
// LOGDIR), as scripts/test-sanitize.js uses them.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'build-sanitize');
const addon = path.join(dir, 'build', 'Release', 'rxrpc.node');

/** The runtime libraries of the compiler node-gyp uses (gcc's, from Debian's libasan8 and libubsan1). */
function runtime(name) {
  const r = spawnSync(process.env.CXX || 'g++', [`-print-file-name=${name}`], { encoding: 'utf8' });
  const file = r.status === 0 ? r.stdout.trim() : '';
  if (!path.isAbsolute(file) || !fs.existsSync(file)) throw new Error(`${name} not found (install libasan8 and libubsan1)`);
  return fs.realpathSync(file);
}

/** What a process needs to run the sanitized addon; reports go to `logDir` when given. */
function sanitizeEnv(logDir) {
  const log = (name) => (logDir ? `:log_path=${path.join(logDir, name)}` : '');
  return {
    RXRPC_ADDON: addon,
    LD_PRELOAD: runtime('libasan.so'),
    // Node does not free everything at exit (leaks are not this addon's to
    // report); V8 handles SIGSEGV itself for WebAssembly bounds checks.
    ASAN_OPTIONS: `detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:abort_on_error=0${log('asan')}`,
    UBSAN_OPTIONS: `print_stacktrace=1${log('ubsan')}`,
  };
}

function build() {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  fs.mkdirSync(dir, { recursive: true });
  // The same binding.gyp, with the sources reached through a link; a tree
  // configured from the same binding.gyp is rebuilt incrementally.
  const gypFile = path.join(dir, 'binding.gyp');
  const same = fs.existsSync(gypFile) && fs.readFileSync(gypFile).equals(fs.readFileSync(path.join(root, 'binding.gyp')));
  const verb = same && fs.existsSync(path.join(dir, 'build', 'Makefile')) ? 'build' : 'rebuild';
  fs.copyFileSync(path.join(root, 'binding.gyp'), gypFile);
  const link = path.join(dir, 'native');
  if (!fs.existsSync(link)) fs.symlinkSync(path.join('..', 'native'), link);
  // The local Node headers, as npm is configured to use (npm_config_nodedir), or the running Node's own.
  const prefix = path.dirname(path.dirname(process.execPath));
  const nodedir = process.env.npm_config_nodedir ||
    (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
  const args = [gyp, verb, ...(nodedir ? [`--nodedir=${nodedir}`] : []), ...(verb === 'rebuild' ? ['--', '-Drxrpc_sanitize=1'] : [])];
  const r = spawnSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`node-gyp failed (status ${r.status})`);
  if (!fs.existsSync(addon)) throw new Error(`no ${addon} after the build`);
  const libs = spawnSync('ldd', [addon], { encoding: 'utf8' }).stdout;
  if (!/libasan/.test(libs) || !/libubsan/.test(libs)) throw new Error(`${addon} is not linked with libasan and libubsan:\n${libs}`);
  return addon;
}

module.exports = { addon, sanitizeEnv, build };

if (require.main === module) {
  try {
    if (process.argv.includes('--env')) {
      const logDir = process.argv[process.argv.indexOf('--env') + 1];
      for (const [k, v] of Object.entries(sanitizeEnv(logDir && !logDir.startsWith('-') ? logDir : undefined))) console.log(`${k}=${v}`);
    } else {
      console.log(build());
    }
  } catch (err) {
    console.error(`sanitize: ${err.message}`);
    process.exit(1);
  }
}
