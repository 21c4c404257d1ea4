// The package as a user gets it: packed, installed from the tarball into a
// fresh project (scripts/pack-test.js), then loaded, type-checked and run
// there. The real call through the installed copy is in
// test/integration/package.test.ts (it needs AF_RXRPC).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import * as ts from 'typescript';
import { nodeJson, packResult, PackResult, root, run } from '../pack';

jest.setTimeout(180000);

const hostHasRxrpc = /^RXRPC\s/m.test(readFileSync('/proc/net/protocols', 'utf8'));
let pack: PackResult;

beforeAll(() => {
  pack = packResult(true);
});

describe('the tarball', () => {
  test('holds the compiled library, the addon sources, the interfaces, binding.gyp, the install script and nothing else', () => {
    const files = execFileSync('tar', ['-tzf', pack.tarball], { encoding: 'utf8' })
      .trim().split('\n').filter((f) => !f.endsWith('/')).map((f) => f.replace(/^package\//, '')).sort();
    // Every module of lib/, its subfolders included (lib/rxgen).
    const modules = (readdirSync(join(root, 'lib'), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
    const expected = [
      'package.json', 'README.md', 'binding.gyp', 'scripts/install.js', 'bin/rxrpc.js',
      ...readdirSync(root).filter((f) => /^(LICEN[CS]E|COPYING)/i.test(f)),
      ...readdirSync(join(root, 'native')).map((f) => `native/${f}`),
      // The interfaces the package ships for the generator (the VL service's).
      ...readdirSync(join(root, 'interfaces')).map((f) => `interfaces/${f}`),
      ...modules.flatMap((m) => [`dist/${m}.js`, `dist/${m}.d.ts`]),
      'dist/index.mjs', 'dist/index.d.mts',
    ].sort();
    expect(files).toEqual(expected);
  });

  test('package.json points every entry at a file the tarball holds', () => {
    const pkg = JSON.parse(readFileSync(join(pack.installed, 'package.json'), 'utf8'));
    const targets = [pkg.main, pkg.types, ...JSON.stringify(pkg.exports).match(/\.\/[^"]+/g)!, ...Object.values(pkg.bin as object)];
    expect(targets.length).toBeGreaterThanOrEqual(7);
    for (const target of targets) expect(statSync(join(pack.installed, target)).isFile()).toBe(true);
  });
});

describe('the installed copy', () => {
  test('require and import load it from node_modules, as one instance; deep imports are refused', async () => {
    const probe = `
      const cjs = require('rxrpc');
      (async () => {
        const esm = await import('rxrpc');
        const refused = [];
        for (const load of [() => require('rxrpc/dist/socket'), () => import('rxrpc/dist/socket.js')]) {
          try { await load(); refused.push('loaded'); } catch (err) { refused.push(err.code); }
        }
        console.log(JSON.stringify({
          main: require.resolve('rxrpc'),
          version: require('rxrpc/package.json').version,
          cjs: Object.keys(cjs).sort(),
          esm: Object.keys(esm).sort(),
          sameClass: esm.Client === cjs.Client && esm.RxAbortError === cjs.RxAbortError,
          refused,
        }));
      })();`;
    const r = await nodeJson<{ main: string; version: string; cjs: string[]; esm: string[]; sameClass: boolean; refused: string[] }>(
      pack.consumer, ['-e', probe]);
    expect(r.main).toBe(join(pack.installed, 'dist', 'index.js'));
    expect(r.version).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    expect(r.cjs).toEqual(expect.arrayContaining(['Client', 'Server', 'RawSocket', 'XdrWriter', 'RxAbortError']));
    expect(r.esm).toEqual(r.cjs);
    expect(r.sameClass).toBe(true);
    expect(r.refused).toEqual(['ERR_PACKAGE_PATH_NOT_EXPORTED', 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
  });

  test(hostHasRxrpc
    ? 'opens a socket with the addon its install script built'
    : 'without AF_RXRPC in the kernel, a socket fails with EAFNOSUPPORT saying how to get it', async () => {
    const probe = `
      const { Client, RawSocket, Server } = require('rxrpc');
      const fields = (e) => e && { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message };
      (async () => {
        const out = {};
        try { new RawSocket().close(); out.raw = 'opened'; } catch (e) { out.raw = fields(e); }
        try { new Server({ address: '127.0.0.1', port: 7999, services: [52] }, () => undefined).close(); out.server = 'opened'; }
        catch (e) { out.server = fields(e); }
        const client = new Client();
        out.call = await client.call({ address: '127.0.0.1', port: 7999, service: 52 }, Buffer.alloc(4), { timeout: 5000 })
          .then(() => 'answered', fields);
        client.close();
        out.addon = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
          .filter((l) => l.endsWith('rxrpc.node')).map((l) => l.slice(l.indexOf('/'))).filter((p, i, a) => a.indexOf(p) === i);
        console.log(JSON.stringify(out));
      })();`;
    const r = await nodeJson<{ raw: unknown; server: unknown; call: unknown; addon: string[] }>(pack.consumer, ['-e', probe]);
    expect(r.addon).toEqual([join(pack.installed, 'build', 'Release', 'rxrpc.node')]);
    if (hostHasRxrpc) {
      expect(r.raw).toBe('opened');
      return;
    }
    const explained = {
      name: 'Error', code: 'EAFNOSUPPORT', errno: -97, syscall: 'socket',
      message: expect.stringMatching(/^socket EAFNOSUPPORT: AF_RXRPC is missing from this kernel .*modprobe rxrpc.*blacklisted/),
    };
    expect(r.raw).toEqual(explained);
    expect(r.server).toEqual(explained);
    expect(r.call).toEqual(explained);
  });

  test('installed without its install script, a socket fails with ERR_RXRPC_ADDON_NOT_BUILT', async () => {
    // The installed files without build/, as npm --ignore-scripts leaves them (dependencies resolve from the project).
    const copy = join(pack.consumer, 'without-scripts', 'node_modules', 'rxrpc');
    rmSync(join(pack.consumer, 'without-scripts'), { recursive: true, force: true });
    cpSync(pack.installed, copy, { recursive: true, filter: (f) => f !== join(pack.installed, 'build') });
    const probe = `
      const { RawSocket } = require('rxrpc');
      try { new RawSocket(); console.log('"opened"'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, cause: e.cause && e.cause.message.split('\\n')[0] })); }`;
    const r = await nodeJson(join(pack.consumer, 'without-scripts'), ['-e', probe]);
    expect(r).toEqual({
      code: 'ERR_RXRPC_ADDON_NOT_BUILT',
      message: expect.stringMatching(/not built .*npm rebuild rxrpc.*python3, make and g\+\+/),
      cause: 'Could not locate the bindings file. Tried:',
    });
  });

  test('on a system other than Linux it loads, and a socket fails with ERR_RXRPC_UNSUPPORTED_PLATFORM', async () => {
    const stub = join(pack.consumer, 'platform-darwin.cjs');
    writeFileSync(stub, "Object.defineProperty(process, 'platform', { value: 'darwin' });\n");
    const probe = `
      const { RawSocket, XdrReader, XdrWriter } = require('rxrpc');
      (async () => {
        const { RawSocket: EsmRawSocket } = await import('rxrpc');
        const out = { xdr: new XdrReader(new XdrWriter().u32(7).toBuffer()).u32(), errors: [] };
        for (const S of [RawSocket, EsmRawSocket]) {
          try { new S(); out.errors.push('opened'); } catch (e) { out.errors.push({ code: e.code, platform: e.platform, message: e.message }); }
        }
        console.log(JSON.stringify(out));
      })();`;
    const r = await nodeJson<{ xdr: number; errors: unknown[] }>(pack.consumer, ['--require', stub, '-e', probe]);
    const unsupported = { code: 'ERR_RXRPC_UNSUPPORTED_PLATFORM', platform: 'darwin', message: 'AF_RXRPC needs Linux; rxrpc cannot run on darwin' };
    expect(r).toEqual({ xdr: 7, errors: [unsupported, unsupported] });

    // The install script builds nothing there and does not fail the install.
    const install = await run(pack.installed, ['--require', stub, join('scripts', 'install.js')]);
    expect(install).toEqual({ status: 0, stdout: '', stderr: 'rxrpc: AF_RXRPC needs Linux; not building the addon on darwin.\n' });
  });
});

describe('the installed rxrpc command', () => {
  // As a user types it: npx finds node_modules/.bin/rxrpc and needs no network.
  test('npx rxrpc runs the installed copy: --help, and --help of a subcommand', async () => {
    const help = await run(pack.consumer, ['rxrpc', '--help'], { command: 'npx' });
    expect(help).toEqual({ status: 0, stdout: expect.stringMatching(/^rxrpc \d+\.\d+\.\d+: .*\n\nUsage: rxrpc COMMAND/), stderr: '' });
    for (const c of ['doctor', 'probe', 'call', 'serve', 'stats', 'gen']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const gen = await run(pack.consumer, ['rxrpc', 'gen', '--help'], { command: 'npx' });
    expect(gen).toMatchObject({ status: 0, stdout: expect.stringMatching(/^rxrpc gen: .*\n\nUsage:\n +rxrpc gen FILE\.xg -o DIR/) });
  });

  test(hostHasRxrpc ? 'rxrpc doctor --json finds AF_RXRPC usable'
    : 'rxrpc doctor --json says why AF_RXRPC is missing and exits 3, with valid JSON', async () => {
    const r = await run(pack.consumer, ['rxrpc', 'doctor', '--json'], { command: 'npx' });
    const doc = JSON.parse(r.stdout);
    if (hostHasRxrpc) {
      expect(doc.afRxrpc.usable).toBe(true);
      return;
    }
    expect(r.status).toBe(3);
    expect(doc).toMatchObject({ ok: false, command: 'doctor', afRxrpc: { usable: false, error: { code: 'EAFNOSUPPORT', errno: -97 } } });
    expect(doc.findings[0]).toMatchObject({ id: 'af-rxrpc', level: 'error' });
  });

  test('rxrpc gen with the installed vl.xg writes TypeScript that imports rxrpc', async () => {
    const out = join(pack.consumer, 'gen-out');
    rmSync(out, { recursive: true, force: true });
    const r = await run(pack.consumer, ['rxrpc', 'gen', join('node_modules', 'rxrpc', 'interfaces', 'vl.xg'), '-o', out],
      { command: 'npx' });
    expect(r).toEqual({ status: 0, stdout: `wrote ${join(out, 'vl.ts')}\n`, stderr: '' });
    expect(readFileSync(join(out, 'vl.ts'), 'utf8')).toMatch(/^import .* from "rxrpc";$/m);
  });

  test('on a system other than Linux, rxrpc doctor gives the typed unsupported-platform error and exits 3', async () => {
    const stub = join(pack.consumer, 'platform-darwin.cjs');
    writeFileSync(stub, "Object.defineProperty(process, 'platform', { value: 'darwin' });\n");
    const bin = join(pack.consumer, 'node_modules', '.bin', 'rxrpc');
    const r = await run(pack.consumer, ['--require', stub, bin, 'doctor', '--json']);
    expect(r.status).toBe(3);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      ok: false,
      afRxrpc: { usable: false, error: { code: 'ERR_RXRPC_UNSUPPORTED_PLATFORM', message: 'AF_RXRPC needs Linux; rxrpc cannot run on darwin' } },
    });
    expect(doc.findings).toEqual([expect.objectContaining({ id: 'af-rxrpc', action: 'run it on Linux' })]);
  });
});

describe('the typings in a consumer project (tsc --strict)', () => {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  // Uses values and types; the @ts-expect-error lines fail the build if the
  // typings lose their event maps or expose the native layer.
  const source = `
import {
  Client, RawSocket, RxAbortError, RXGEN_OPCODE, Server, XdrReader, XdrWriter,
  type ClientOptions, type IncomingCall, type ReceivedMessage,
} from 'rxrpc';
// @ts-expect-error the native layer is not part of the typings
import { loadNative } from 'rxrpc';

export const options: ClientOptions = { maxCallsPerPeer: 4, isolateServices: true };

export async function handler(call: IncomingCall): Promise<Buffer> {
  const request = await call.request();
  if (request.length === 0) throw new RxAbortError(RXGEN_OPCODE);
  return Buffer.concat([Buffer.from('re:'), request]);
}

export function watch(socket: RawSocket): void {
  socket.on('message', (m: ReceivedMessage) => console.log(m.callId, m.data.length, m.peer.address));
  // @ts-expect-error a 'message' listener gets a ReceivedMessage
  socket.on('message', (m: string) => console.log(m));
}

export const serve = (port: number): Server => new Server({ address: '127.0.0.1', port, services: [52] }, handler);
export const dispose = (client: Client): Promise<void> => client[Symbol.asyncDispose]();
export async function ask(client: Client, port: number, signal: AbortSignal): Promise<Buffer> {
  const reply = await client.call({ address: '127.0.0.1', port, service: 52 }, [Buffer.from('hi')], { signal, timeout: 1000 });
  return reply.data;
}

const reader = new XdrReader(new XdrWriter().u32(65537).string('rxrpc').toBuffer());
let socket: string;
try {
  new RawSocket().close();
  socket = 'opened';
} catch (err) {
  socket = String((err as { code?: unknown }).code);
}
console.log(JSON.stringify({ u32: reader.u32(), string: reader.string(), socket }));
`;
  // types: [] and lib es2022 (no DOM): Buffer, EventEmitter and AbortSignal must come from the package's own
  // reference to @types/node. skipLibCheck false: the package's declarations are type-checked too.
  const base = { strict: true, skipLibCheck: false, target: 'es2022', lib: ['es2022'], types: [], rootDir: '.', outDir: 'out' };
  const projects: Record<string, { type?: string; options: object; runs: boolean }> = {
    'CommonJS, node16': { type: 'commonjs', options: { module: 'node16', moduleResolution: 'node16' }, runs: true },
    'ES module, node16': { type: 'module', options: { module: 'node16', moduleResolution: 'node16' }, runs: true },
    // Resolution only: the declarations were checked above; skipLibCheck spares about 2 s of CPU each.
    'bundler, skipLibCheck': { options: { module: 'esnext', moduleResolution: 'bundler', noEmit: true, skipLibCheck: true }, runs: false },
    'CommonJS, node10 (main and types), skipLibCheck': {
      options: { module: 'commonjs', moduleResolution: 'node10', noEmit: true, skipLibCheck: true }, runs: false,
    },
  };
  // One tsc per project, all started at once.
  const builds = new Map<string, Promise<{ dir: string; status: number | null; output: string }>>();
  beforeAll(() => {
    for (const [name, p] of Object.entries(projects)) {
      const dir = join(pack.consumer, `types-${name.replace(/\W+/g, '-').replace(/-$/, '').toLowerCase()}`);
      mkdirSync(dir, { recursive: true });
      if (p.type) writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: p.type }));
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...base, ...p.options }, files: ['index.ts'] }));
      writeFileSync(join(dir, 'index.ts'), source);
      builds.set(name, run(dir, [tsc, '-p', 'tsconfig.json']).then((r) => ({ dir, status: r.status, output: r.stdout + r.stderr })));
    }
  });

  test.each(Object.keys(projects))('compile: %s', async (name) => {
    const build = (await builds.get(name))!;
    expect({ status: build.status, output: build.output }).toEqual({ status: 0, output: '' });
    if (!projects[name].runs) return;
    const out = await nodeJson(build.dir, [join('out', 'index.js')]);
    expect(out).toEqual({ u32: 65537, string: 'rxrpc', socket: hostHasRxrpc ? 'opened' : 'EAFNOSUPPORT' });
  });

  test('the typings declare every run-time export but the internal ones, and nothing tagged internal', () => {
    // The internal exports: lib/index.ts's export statements tagged @internal.
    const index = ts.createSourceFile('index.ts', readFileSync(join(root, 'lib', 'index.ts'), 'utf8'), ts.ScriptTarget.ES2022, true);
    const internal = index.statements
      .filter((s): s is ts.ExportDeclaration => ts.isExportDeclaration(s) && ts.getJSDocTags(s).some((t) => t.tagName.text === 'internal'))
      .flatMap((s) => (s.exportClause && ts.isNamedExports(s.exportClause) ? s.exportClause.elements.map((e) => e.name.text) : []));
    expect(internal).toEqual(expect.arrayContaining(['loadNative', 'NativeBinding', 'NativeSocket']));

    const entry = join(pack.installed, 'dist', 'index.d.ts');
    const program = ts.createProgram([entry], { strict: true, types: [], typeRoots: [join(pack.consumer, 'node_modules', '@types')] });
    const checker = program.getTypeChecker();
    const typed = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!).map((e) => e.name);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const runtime = Object.keys(require(join(pack.installed, 'dist', 'index.js')));
    expect(runtime.filter((n) => !internal.includes(n) && !typed.includes(n))).toEqual([]);
    expect(typed.filter((n) => internal.includes(n))).toEqual([]);

    const dts = readdirSync(join(pack.installed, 'dist')).filter((f) => /\.d\.m?ts$/.test(f));
    expect(dts.filter((f) => readFileSync(join(pack.installed, 'dist', f), 'utf8').includes('@internal'))).toEqual([]);
  });
});

describe('engines', () => {
  // Where Node 20 got what the declarations do not date with @since.
  const KNOWN: Record<string, string> = {
    'SymbolConstructor.dispose': '20.4.0', // Node's own Symbol.dispose (nodejs/node#48518), before V8 had it
    'SymbolConstructor.asyncDispose': '20.4.0', // likewise; without it [Symbol.asyncDispose]() is a method named "undefined"
    'AbortSignal.any': '20.3.0',
  };
  const v = (s: string) => s.split('.').map(Number);
  const newer = (a: string, b: string) => {
    const [x, y] = [v(a), v(b)];
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
    return false;
  };

  /** The Node 20 release that has everything lib/ uses, with what sets it. */
  function minimumNode20(): { version: string; uses: string[]; unknown: string[] } {
    const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.build.json'), {}, {
      ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); },
    })!;
    const program = ts.createProgram(config.fileNames, config.options);
    const checker = program.getTypeChecker();
    let version = '20.0.0';
    const uses = new Map<string, string>();
    const unknown = new Set<string>();
    for (const file of program.getSourceFiles()) {
      if (!config.fileNames.includes(file.fileName)) continue;
      const visit = (node: ts.Node): void => {
        if (ts.isIdentifier(node)) {
          let symbol = checker.getSymbolAtLocation(node);
          if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
          const name = symbol && checker.getFullyQualifiedName(symbol).replace(/^"[^"]*"\./, '');
          const where = `${basename(file.fileName)}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
          for (const decl of symbol?.declarations ?? []) {
            const from = relative(root, decl.getSourceFile().fileName);
            let since: string | undefined = KNOWN[name!];
            if (!since && from.startsWith('node_modules/@types/node/')) {
              // "v20.3.0, v18.17.0": the 20.x entry, else anything older than 20 means all of 20.
              const tags = ts.getJSDocTags(decl).filter((t) => t.tagName.text === 'since');
              const listed = tags.flatMap((t) => (ts.getTextOfJSDocComment(t.comment) ?? '').match(/\d+\.\d+\.\d+/g) ?? []);
              since = listed.find((s) => v(s)[0] === 20) ?? (listed.some((s) => v(s)[0] < 20) || !listed.length ? '20.0.0' : listed[0]);
            } else if (!since && /node_modules\/typescript\/lib\/lib\.(es20(2[4-9]|[3-9]\d)|esnext)/.test(from)) {
              unknown.add(`${name} (${basename(from)}, ${where})`); // newer than Node 20.0's V8 (ES2023)
            }
            if (since && newer(since, '20.0.0')) uses.set(`${name} (${where})`, since);
            if (since && newer(since, version)) version = since;
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(file);
    }
    return { version, uses: [...uses].map(([what, since]) => `${since}: ${what}`).sort(), unknown: [...unknown] };
  }

  test("engines.node admits no Node release that lacks an API the library uses", () => {
    const { version, uses, unknown } = minimumNode20();
    expect(unknown).toEqual([]); // add these to KNOWN with the Node 20 release that has them
    // The API that sets the minimum today (client.ts, server.ts, socket.ts).
    expect(uses).toEqual(expect.arrayContaining([expect.stringMatching(/^20\.4\.0: SymbolConstructor\.asyncDispose/)]));
    const floor = /^>=(\d+\.\d+\.\d+)$/.exec(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node);
    expect(floor).not.toBeNull();
    // A floor below what lib/ needs would let npm install it where it breaks (a Node 20 release: see README).
    expect(newer(version, floor![1]) ? `engines.node ${floor![0]}, but lib/ needs ${version}: ${uses.join('; ')}` : 'ok').toBe('ok');
    expect(v(floor![1])[0]).toBe(20);
  });
});
