/**
 * The rxrpc command in the kernel VM: doctor reports what is measured on the
 * running kernel; probe against this library's Server, the userspace Rx peer
 * and OpenAFS's vlserver; call and serve against each other (serve also as a
 * process of its own, stopped by SIGINT); stats of the live kernel and of
 * vlserver's RXSTATS service.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { AFS, Client, RawSocket, RXGEN_OPCODE, Server, VL_NOENT, XdrWriter } from '../../lib/index';
import { HandlerResult, RxPeer } from '../rx-peer';
import { rxrpc } from '../unit/cli-support';
import { startVlserver, VL_ADDRESS, Vlserver } from '../vl';
import { procKeys, revoked } from './keys';
import { freshPort } from './helpers';

const REPO = join(__dirname, '..', '..', '..');
const BIN = join(REPO, 'bin', 'rxrpc.js');
const address = '127.0.0.1';
const json = (r: { stdout: string }) => JSON.parse(r.stdout);

/** Capability words answered by each service, so that a probe's answer shows who served it. */
const WORDS: Record<number, number[]> = { 52: [0x1], 2503: [0x1, 0x2, 0xfeedf00d] };
const capsReply = (service: number) => {
  const w = new XdrWriter().u32(WORDS[service].length);
  for (const x of WORDS[service]) w.u32(x);
  return w.toBuffer();
};

/** The kernel series this VM runs: 7 for 7.x. */
const major = Number(/^(\d+)/.exec(release())![1]);
const minor = Number(/^\d+\.(\d+)/.exec(release())![1]);

describe('cli doctor in the VM', () => {
  test('reports this kernel as measured: usable, its SUPPORTED_CMSG, its sysctls, its module and whether it has RxGK', async () => {
    const r = await rxrpc(['doctor', '--json']);
    expect(r.code).toBe(0);
    const d = json(r);
    expect(d).toMatchObject({ ok: true, kernel: { release: release() }, afRxrpc: { usable: true } });
    // The command's figure is the kernel's, and the kernel's is what the series has (14 up to 6.15, 19 on 7.x).
    const raw = new RawSocket();
    const measured = raw.supportedCmsg();
    raw.close();
    expect(d.supportedCmsg.value).toBe(measured);
    expect(measured).toBe(major >= 7 || (major === 6 && minor >= 16) ? 19 : 14);
    for (const s of d.sysctls) expect(s.value).toBe(readFileSync(`/proc/sys/net/rxrpc/${s.name}`, 'utf8').trim());
    expect(d.sysctls.map((s: { name: string }) => s.name)).toContain('max_backlog');
    expect(d.module.loaded || d.module.present).toBe(true);
    // The fixed module carries a version; Debian's own has none.
    const version = existsSync('/sys/module/rxrpc/version') ? readFileSync('/sys/module/rxrpc/version', 'utf8').trim() : undefined;
    expect(d.module.version).toBe(version);
    expect(d.upgrade.fixedModule).toBe(version?.startsWith('upgrade-fix') ?? false);
    if (process.env.RXRPC_VM_MODULE) expect(d.upgrade.fixedModule).toBe(process.env.RXRPC_VM_MODULE === 'fixed');
    // RxGK as the module's build says (only the fixed 7.x module has it), and no key left behind.
    expect(d.rxgk).toBe(process.env.RXRPC_VM_RXGK === 'yes');
    // (doctor runs as a child process: its keys are gone or, until collected, revoked.)
    expect(procKeys().filter((k) => k.type === 'rxrpc_s' && k.description.startsWith('1:6:1:20')).every(revoked)).toBe(true);
    const text = await rxrpc(['doctor']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`highest control message: ${measured} \\(`));
    expect(text.stdout).toMatch(/^ {2}ok {4}AF_RXRPC works/m);
  });

  test('--self-test: N probes against its own upgrading server, every one counted', async () => {
    const probes = 10;
    const r = await rxrpc(['doctor', '--self-test', '--probes', String(probes), '--port', String(freshPort()), '--json']);
    expect(r.code).toBe(0);
    const t = json(r).upgrade.selfTest;
    const aborted = Object.values(t.aborted as Record<string, number>).reduce((a, b) => a + b, 0);
    const failed = Object.values(t.failed as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(t.upgraded + t.original + aborted + failed).toBe(probes);
    // What the kernel does: the stock module breaks server-side upgrade (README, Kernel support), the fixed one does not.
    if (json(r).upgrade.fixedModule) expect(t.upgraded).toBe(probes);
    else expect(t.upgraded).toBeLessThan(probes);
    expect(json(r).findings.find((f: { id: string }) => f.id === 'self-test').summary).toMatch(`${t.upgraded} upgraded`);
  });
});

describe('cli probe in the VM', () => {
  const peers: RxPeer[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });

  test('against this library\'s Server without upgrade: service 52 answers, its capabilities decoded; a series of 5', async () => {
    const port = freshPort();
    const server = new Server({ address, port, services: [52, 2503] }, (call) => capsReply(call.service));
    try {
      const r = await rxrpc(['probe', `${address}:${port}`, '--vl', '--json']);
      expect(r.code).toBe(0);
      expect(json(r)).toMatchObject({
        ok: true, kind: 'VL', service: 52, upgradeTo: 2503,
        probes: [{ ok: true, service: 52, upgraded: false, capabilities: [1] }],
        summary: { probes: 1, original: 1, failed: 0 },
      });
      const text = await rxrpc(['probe', `${address}:${port}`, '--vl']);
      expect(text.stdout).toMatch(/result +not upgraded: service 52 answered/);
      expect(text.stdout).toMatch(/capabilities +0x00000001/);
      expect(text.stdout).toMatch(/round trip +\d+(\.\d+)? ms/);
      const series = await rxrpc(['probe', `${address}:${port}`, '--service', '52', '--request', '00010001', '--upgrade-to', '2503', '--count', '5', '--json']);
      expect(json(series).summary).toMatchObject({ probes: 5, original: 5, failed: 0, answeredBy: { 52: 5 } });
      expect(series.stderr).toBe(''); // not a terminal: no progress
    } finally {
      await server.close();
    }
  });

  test('against the userspace Rx peer, which upgrades: 2503 answers with its capabilities', async () => {
    const handler = (service: number): HandlerResult => capsReply(service);
    const peer = await RxPeer.start({ port: freshPort(), address, mode: 'upgrade', handler, giveUp: 10000 });
    peers.push(peer);
    const r = await rxrpc(['probe', `${address}:${peer.port}`, '--vl', '--json']);
    expect(r.code).toBe(0);
    expect(json(r).probes[0]).toMatchObject({ ok: true, service: 2503, upgraded: true, capabilities: WORDS[2503] });
    const text = await rxrpc(['probe', `${address}:${peer.port}`, '--vl']);
    expect(text.stdout).toMatch(/result +upgraded: service 52 answered as 2503/);
    expect(text.stdout).toMatch(/capabilities +0x00000001 0x00000002 0xfeedf00d/);
    expect(peer.calls.every((c) => c.upgradeRequested && c.upgraded)).toBe(true);
  });

  test('a peer that aborts the probe with RXGEN_OPCODE has no upgrade (exit 0); a silent one times out (exit 1)', async () => {
    const aborting = await RxPeer.start({ port: freshPort(), address, mode: 'abort', abortCode: RXGEN_OPCODE, giveUp: 10000 });
    const silent = await RxPeer.start({ port: freshPort(), address, mode: 'silent' });
    peers.push(aborting, silent);
    const a = await rxrpc(['probe', `${address}:${aborting.port}`, '--fs', '--json']);
    expect(a.code).toBe(0);
    expect(json(a).probes[0]).toMatchObject({ service: 1, upgraded: false, fallback: 'not-supported', abortCode: RXGEN_OPCODE, abortName: 'RXGEN_OPCODE' });
    const s = await rxrpc(['probe', `${address}:${silent.port}`, '--vl', '--timeout', '1500', '--json']);
    expect(s.code).toBe(1);
    expect(json(s)).toMatchObject({ ok: false, probes: [{ ok: false, error: { code: 'ETIMEDOUT' } }], summary: { failed: 1 } });
  });
});

describe('cli call and serve in the VM', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });

  /** `rxrpc serve ARGS --json` as a process of its own; resolves once it listens. */
  function serveProcess(args: string[]): Promise<{ lines: Array<Record<string, unknown>>; exited: Promise<number | null> }> {
    const p = spawn(process.execPath, [BIN, 'serve', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = p;
    const lines: Array<Record<string, unknown>> = [];
    let buffered = '';
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    return new Promise((resolve, reject) => {
      p.stdout!.on('data', (d) => {
        buffered += d;
        let i: number;
        while ((i = buffered.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buffered.slice(0, i)));
          buffered = buffered.slice(i + 1);
          if (lines[lines.length - 1].event === 'listening') resolve({ lines, exited });
        }
      });
      void exited.then((code) => reject(new Error(`rxrpc serve exited (${code}) before listening: ${stderr}`)));
    });
  }

  test('serve --echo as a process: call --hex, call - from stdin with --raw, each call logged; SIGINT stops it with 0', async () => {
    const port = freshPort();
    const { lines, exited } = await serveProcess(['--port', String(port), '--service', '52']);
    expect(lines[0]).toMatchObject({ event: 'listening', address, port, services: [52], action: 'echo' });
    const r = await rxrpc(['call', `${address}:${port}`, '--service', '52', '--hex', 'deadbeef', '--json']);
    expect(r.code).toBe(0);
    expect(json(r)).toMatchObject({ ok: true, service: 52, answeredBy: 52, replyBytes: 4, reply: 'deadbeef' });
    const text = await rxrpc(['call', `${address}:${port}`, '--service', '52', '--hex', '00 01 02']);
    expect(text.stdout).toMatch(new RegExp(`^reply from ${address}:${port}, service 52, in [\\d.]+ ms: 3 bytes\\n00000000  00 01 02 `));
    // A real pipe: bytes in from stdin, the same bytes out on stdout, nothing else.
    const body = Buffer.from([0, 0xff, 0x10, 0x80, 0x7f]);
    const raw = execFileSync(process.execPath, [BIN, 'call', `${address}:${port}`, '--service', '52', '-', '--raw'], { input: body, timeout: 60000 });
    expect(raw.equals(body)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const calls = lines.filter((l) => l.event === 'call');
    expect(calls.map((c) => c.request)).toEqual(['deadbeef', '000102', body.toString('hex')]);
    expect(calls.every((c) => c.service === 52 && c.action === 'echo')).toBe(true);
    child!.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(lines[lines.length - 1]).toMatchObject({ event: 'stopped', reason: 'SIGINT', calls: 3 });
  });

  test('serve --abort NAME: call reports the code and its name, exit 1; --count stops serve', async () => {
    const port = freshPort();
    const served = rxrpc(['serve', '--port', String(port), '--service', '52', '--abort', 'VL_NOENT', '--count', '2']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const r = await rxrpc(['call', `${address}:${port}`, '--service', '52', '--hex', '00000208']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/aborted by the peer \(or a kernel on the way\) with code 363524 \(VL_NOENT\)/);
    const j = await rxrpc(['call', `${address}:${port}`, '--service', '52', '--hex', '00000208', '--json']);
    expect(json(j)).toMatchObject({ ok: false, abort: { code: VL_NOENT, name: 'VL_NOENT' } });
    const s = await served;
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/call 1 from 127\.0\.0\.1:\d+ service 52: 4 bytes 00000208 -> aborted 363524 \(VL_NOENT\)/);
    expect(s.stdout).toMatch(/stopped \(after 2 calls\)/);
  });

  test('serve two services with --reply: a call to each is answered by it; a stop request ends it', async () => {
    const port = freshPort();
    const io = await import('../unit/cli-support');
    const fake = io.fakeIo();
    const { main } = await import('../../lib/cli/main');
    const done = main(['serve', '--port', String(port), '--service', '52', '--service', '2503', '--reply', '0000000100000001', '--json'], fake);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const service of [52, 2503]) {
      const r = await rxrpc(['call', `${address}:${port}`, '--service', String(service), '--hex', '00010001', '--json']);
      expect(json(r)).toMatchObject({ ok: true, answeredBy: service, reply: '0000000100000001' });
    }
    fake.stop('SIGTERM');
    expect(await done).toBe(0);
    const lines = fake.captured.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.event === 'call').map((l) => l.service)).toEqual([52, 2503]);
    expect(lines[lines.length - 1]).toMatchObject({ event: 'stopped', reason: 'SIGTERM', calls: 2 });
  });

  test('a call nobody answers times out (exit 1); a port nobody serves is an error (exit 1)', async () => {
    const silent = await RxPeer.start({ port: freshPort(), address, mode: 'silent' });
    try {
      const r = await rxrpc(['call', `${address}:${silent.port}`, '--service', '52', '--hex', '00', '--timeout', '1000']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no reply within 1000 ms/);
    } finally {
      await silent.close();
    }
    const none = await rxrpc(['call', `${address}:${freshPort()}`, '--service', '52', '--hex', '00', '--timeout', '20000', '--json']);
    expect(none.code).toBe(1);
    expect(json(none).ok).toBe(false);
  });
});

describe('cli stats in the VM', () => {
  test('the live kernel\'s tables parse completely and show a listening server and its calls', async () => {
    const port = freshPort();
    let unblock!: () => void;
    const held = new Promise<void>((resolve) => (unblock = resolve));
    const server = new Server({ address, port, services: 52 }, async () => {
      await held;
      return Buffer.from([1]);
    });
    const client = new Client();
    try {
      const pending = client.call({ address, port, service: 52 }, Buffer.from([0, 0, 0, 1]), { timeout: 30000 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const r = await rxrpc(['stats', '--json', '--list']);
      expect(r.code).toBe(0);
      const doc = json(r);
      expect(doc.summary.unparsedLines).toBe(0);
      expect(doc.summary.calls.preallocated).toBeGreaterThan(0); // the server's accept pool
      expect(doc.summary.calls.client).toBeGreaterThanOrEqual(1);
      expect(doc.summary.calls.server).toBeGreaterThanOrEqual(1);
      expect(doc.summary.calls.byService['52']).toBeGreaterThanOrEqual(2);
      expect(doc.summary.locals.map((l: { local: string }) => l.local)).toContain(`${address}:${port}`);
      expect(doc.files).toEqual(expect.arrayContaining(['calls', 'conns', 'peers', 'locals', ...(major >= 7 || minor >= 12 ? ['bundles', 'stats'] : [])]));
      unblock();
      await pending;
    } finally {
      unblock();
      client.close();
      await server.close();
    }
  });
});

// ---- OpenAFS's vlserver, with RPC statistics on (for RXSTATS)

describe('cli against OpenAFS vlserver in the VM', () => {
  let vl: Vlserver | undefined;
  beforeAll(async () => {
    vl = await startVlserver('/tmp/openafs-cli', ['-enable_process_stats']);
  }, 150000);
  afterAll(async () => {
    await vl?.stop();
  });

  test('probe --vl: OpenAFS 1.8 aborts VL_GetCapabilities with RXGEN_OPCODE, which means no upgrade', async () => {
    const r = await rxrpc(['probe', VL_ADDRESS, '--vl', '--json']);
    expect(r.code).toBe(0);
    expect(json(r)).toMatchObject({ target: { port: AFS.VL.port }, probes: [{ service: 52, upgraded: false, fallback: 'not-supported', abortName: 'RXGEN_OPCODE' }] });
    const text = await rxrpc(['probe', VL_ADDRESS, '--vl']);
    expect(text.stdout).toMatch(/result +not upgraded: service 52 does not know the probe request \(RXGEN_OPCODE\)/);
    expect(text.stdout).toMatch(/abort +-455 \(RXGEN_OPCODE\)/);
  });

  test('call: VL_ProbeServer answers empty; GetEntryByNameN of a missing volume is VL_NOENT', async () => {
    const probe = await rxrpc(['call', VL_ADDRESS, '--service', '52', '--hex', '00000202', '--json']);
    expect(probe.code).toBe(0);
    expect(json(probe)).toMatchObject({ ok: true, answeredBy: 52, replyBytes: 0, target: { port: 7003 } });
    const name = new XdrWriter().u32(519).string('no.such.volume').toBuffer().toString('hex');
    const missing = await rxrpc(['call', VL_ADDRESS, '--service', '52', '--hex', name, '--json']);
    expect(missing.code).toBe(1);
    expect(json(missing)).toMatchObject({ ok: false, abort: { code: VL_NOENT, name: 'VL_NOENT' } });
  });

  test('call --xg with the project\'s vl.xg: GetEntryByNameU of a missing volume is VL_NOENT; ListAttributesN2 decoded', async () => {
    const xg = join(REPO, 'interfaces', 'vl.xg');
    const r = await rxrpc(['call', VL_ADDRESS, '--service', '52', '--xg', xg, '--proc', 'GetEntryByNameU', 'no.such.volume', '--json']);
    expect(r.code).toBe(1);
    expect(json(r)).toMatchObject({ procedure: 'VL_GetEntryByNameU', opcode: 527, abort: { code: VL_NOENT, name: 'VL_NOENT' } });
    const list = await rxrpc(['call', VL_ADDRESS, '--service', '52', '--xg', xg, '--proc', 'ListAttributesN2', '{}', '', '0', '--json']);
    expect(list.code).toBe(0);
    expect(json(list).decoded).toEqual({ nentries: 0, blkentries: [], nextstartindex: -1 });
  });

  test('stats --rxstats: vlserver\'s RXSTATS service answers, with its process statistics', async () => {
    const before = await rxrpc(['stats', `${VL_ADDRESS}:7003`, '--rxstats', '--json']);
    expect(before.code).toBe(0);
    const doc = json(before);
    expect(doc).toMatchObject({ ok: true, service: 409, version: 1, processStats: true, errors: {} });
    const total = (d: { process: { entries: Array<{ invocations: string }> } }) => d.process.entries.reduce((n, e) => n + BigInt(e.invocations), 0n);
    // Three more VL calls are counted.
    for (let i = 0; i < 3; i++) await rxrpc(['call', VL_ADDRESS, '--service', '52', '--hex', '00000202']);
    const after = json(await rxrpc(['stats', `${VL_ADDRESS}:7003`, '--rxstats', '--json']));
    expect(total(after) - total(doc)).toBeGreaterThanOrEqual(3n);
    const text = await rxrpc(['stats', `${VL_ADDRESS}:7003`, '--rxstats']);
    expect(text.stdout).toMatch(/process statistics +on/);
    expect(text.stdout).toMatch(/Rx DEBUG packets \(what rxdebug sends\) cannot be sent through AF_RXRPC/);
  });
});
