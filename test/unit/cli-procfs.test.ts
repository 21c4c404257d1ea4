/**
 * /proc/net/rxrpc parsing, against files captured in the VM on each kernel of
 * the matrix (test/unit/cli-samples/RELEASE/{in-flight,after,closed}: with
 * calls in flight to a server, a silent IPv4 and a silent IPv6 peer; after
 * they ended; after every socket was closed).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cellText, parseStats, parseTable, readProcDir, summarise } from '../../lib/cli/procfs';
import { rxrpc, SAMPLES } from './cli-support';

const KERNELS = ['6.1.0-57-amd64', '6.12.95+deb12-amd64', '7.3.4+deb13-amd64'];
const dir = (kernel: string, phase: string) => join(SAMPLES, kernel, phase);

describe('cli /proc/net/rxrpc parsing', () => {
  test('the samples are the ones described: three kernels, three phases', () => {
    expect(readdirSync(SAMPLES).sort()).toEqual(KERNELS);
  });

  test.each(KERNELS)('%s: every line of every captured file fits its header', (kernel) => {
    for (const phase of ['in-flight', 'after', 'closed']) {
      const s = readProcDir(dir(kernel, phase));
      expect(summarise(s).unparsedLines).toBe(0);
      expect(s.other).toEqual({});
      for (const t of Object.values(s.tables)) expect(t!.columns[0]).toBe('Proto');
    }
  });

  test('which files each kernel has: bundles and stats from 6.12 on', () => {
    expect(readProcDir(dir(KERNELS[0], 'in-flight')).files).toEqual(['calls', 'conns', 'locals', 'peers']);
    for (const k of KERNELS.slice(1)) {
      expect(readProcDir(dir(k, 'in-flight')).files).toEqual(['bundles', 'calls', 'conns', 'locals', 'peers', 'stats']);
    }
  });

  test('columns differ by kernel and are read from the header', () => {
    const calls = (k: string) => readProcDir(dir(k, 'in-flight')).tables.calls!.columns;
    expect(calls(KERNELS[0])).not.toContain('CW');
    expect(calls(KERNELS[1])).toContain('CW');
    const peers = (k: string) => readProcDir(dir(k, 'in-flight')).tables.peers!.columns;
    expect(peers(KERNELS[0])).toEqual(['Proto', 'Local', 'Remote', 'Use', 'CW', 'MTU', 'LastUse', 'RTT', 'RTO']);
    expect(peers(KERNELS[1])).toContain('SST');
    expect(peers(KERNELS[2])).toContain('Maxd');
    expect(readProcDir(dir(KERNELS[1], 'in-flight')).tables.conns!.columns).toEqual(expect.arrayContaining(['Ref', 'Act']));
  });

  test('6.1 with calls in flight: counted by end, state and service, preallocated calls apart', () => {
    const sum = summarise(readProcDir(dir(KERNELS[0], 'in-flight')));
    expect(sum.calls).toEqual({
      active: 7, client: 4, server: 3, preallocated: 20,
      byState: { SvAwtACK: 1, SvAckReq: 2, ClAwtRpl: 4 }, byService: { 52: 6, 2503: 1 }, aborted: [],
    });
    expect(sum.conns).toEqual({ active: 8, client: 5, server: 3, preallocated: 20, byState: { SvSecure: 3, Client: 5 } });
    expect(sum.locals!.map((l) => l.local)).toEqual(['[::]:57805', '[::]:65337', '0.0.0.0:60871', '[::1]:17393', '127.0.0.1:17390']);
    const peer = sum.peers!.find((p) => p.local === '127.0.0.1:17390')!;
    expect(peer).toEqual({ local: '127.0.0.1:17390', remote: '127.0.0.1:60871', use: 5, rttUs: 954, rtoUs: 8000, mtu: 5748, lastUseSeconds: 0 });
    // The silent peer has no RTT sample: 6.1 shows 0.
    expect(sum.peers!.find((p) => p.remote === '127.0.0.1:17391')!.rttUs).toBeUndefined();
  });

  test('7.3: MTU is Maxd, a peer without an RTT sample shows -1, bundles are counted', () => {
    const sum = summarise(readProcDir(dir(KERNELS[2], 'in-flight')));
    const silent = sum.peers!.find((p) => p.remote === '127.0.0.1:17391')!;
    expect(silent).toMatchObject({ rttUs: undefined, mtu: 1440 });
    expect(sum.bundles).toBe(5);
    expect(sum.calls!.byState).toEqual({ ClAwtAck: 2, ClAwtRpl: 2, SvAckReq: 2 });
  });

  test('6.12 writes "(einval)" for a preallocated call\'s peer; such calls are not counted as active', () => {
    const t = readProcDir(dir(KERNELS[1], 'after')).tables.calls!;
    expect(t.rows.every((r) => r.Remote === '(einval)' && r.State === 'SvPrealc')).toBe(true);
    expect(summarise(readProcDir(dir(KERNELS[1], 'after'))).calls).toMatchObject({ active: 0, preallocated: t.rows.length });
  });

  test('after every socket closed: empty tables, not errors', () => {
    for (const k of KERNELS) {
      const sum = summarise(readProcDir(dir(k, 'closed')));
      expect(sum.calls).toMatchObject({ active: 0, preallocated: 0 });
      expect(sum.peers).toEqual([]);
      expect(sum.locals).toEqual([]);
    }
  });

  test('numbers: IDs in hex, use counts in decimal, aborts signed, LastUse in seconds', () => {
    const t = parseTable('calls', [
      'Proto Local Remote SvID ConnID CallID End Use State Abort DebugId TxSeq TW RxSeq RW RxSerial RxTimo',
      'UDP 127.0.0.1:1 127.0.0.1:2 9c7 733fd72c 0000000a Clt  12 Complete fffffffb 0000000b 00000000 01 00000001 00 00000000 0011e7',
    ].join('\n'));
    expect(t.rows[0]).toMatchObject({ SvID: 2503, ConnID: 0x733fd72c, CallID: 10, Use: 12, Abort: -5, RxTimo: 0x11e7, State: 'Complete' });
    expect(summarise({ dir: 'x', files: ['calls'], tables: { calls: t }, other: {} }).calls!.aborted)
      .toEqual([{ code: -5, name: 'RX_PROTOCOL_ERROR', count: 1 }]);
    expect(cellText('calls', 'ConnID', 0x733fd72c)).toBe('733fd72c');
    expect(cellText('calls', 'SvID', 2503)).toBe('2503');
    expect(cellText('calls', 'Abort', -5)).toBe('-5');
    const p = parseTable('peers', 'Proto Local Remote Use CW MTU LastUse RTT RTO\nUDP a b 1 3 5768 12s -1 1000\n');
    expect(p.rows[0]).toMatchObject({ Use: 1, CW: 3, MTU: 5768, LastUse: 12, RTT: -1, RTO: 1000 });
  });

  test('a line that does not fit its header is kept, not dropped or misread', () => {
    const t = parseTable('locals', 'Proto Local Use Act\nUDP 127.0.0.1:1 3 1\nUDP 127.0.0.1:2 3 1 9\ngarbage\n');
    expect(t.rows).toHaveLength(1);
    expect(t.unparsed).toEqual(['UDP 127.0.0.1:2 3 1 9', 'garbage']);
    expect(parseTable('calls', '')).toEqual({ columns: [], rows: [], unparsed: [] });
  });

  test('stats: groups of key=value, repeated groups merged, lists of numbers, odd lines kept', () => {
    const text = readFileSync(join(dir(KERNELS[2], 'in-flight'), 'stats'), 'utf8');
    const s = parseStats(text);
    expect(s.unparsed).toEqual([]);
    expect(s.groups['Data-Tx']).toEqual({ nr: 16, retrans: 0, uf: 0, cwr: 28 });
    expect(s.groups['Why-Req-A']).toMatchObject({ acklost: expect.any(Number), nolast: 6, smtxw: 0 });
    expect(s.groups['Jumbo-Tx'].values).toEqual([16, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseStats('Odd line\nX : a=1 b\n').unparsed).toEqual(['Odd line', 'X : a=1 b']);
  });

  test('rxrpc stats --from a saved directory prints the summary; --json has every table with --list', async () => {
    const r = await rxrpc(['stats', '--from', dir(KERNELS[1], 'in-flight')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/calls +7 active \(4 client, 3 server\), 20 preallocated server calls/);
    expect(r.stdout).toMatch(/by service +52 6, 2503 1/);
    expect(r.stdout).toMatch(/127\.0\.0\.1:17390 +127\.0\.0\.1:64333 +3\.66 ms +16\.6 ms +5748 +0 s/);
    expect(r.stdout).toMatch(/kernel counters \(stats\): DATA sent 16, retransmitted 32, DATA received 15, ACKs sent 55/);
    const j = await rxrpc(['stats', '--from', dir(KERNELS[1], 'in-flight'), '--list', '--json']);
    const doc = JSON.parse(j.stdout);
    expect(doc).toMatchObject({ ok: true, command: 'stats', files: ['bundles', 'calls', 'conns', 'locals', 'peers', 'stats'] });
    expect(doc.tables.calls.rows).toHaveLength(27);
    expect(doc.stats.groups.Ack).toEqual({ fill: 55, send: 55, skip: 0 });
  });

  test('rxrpc stats --from a directory that does not exist is a usage error', async () => {
    const r = await rxrpc(['stats', '--from', join(SAMPLES, 'nowhere')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--from .*nowhere: no such directory/);
  });
  describe('rxrpc stats on a file system root of the test\'s own', () => {
    let root: string;
    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'rxrpc-procfs-'));
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));
    const proc = () => join(root, 'proc', 'net', 'rxrpc');

    test('without /proc/net/rxrpc: exit 3, the module is not loaded, valid JSON under --json', async () => {
      const r = await rxrpc(['stats'], { root });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/\/proc\/net\/rxrpc does not exist: the rxrpc module is not loaded in this kernel/);
      expect(r.stderr).toMatch(/rxrpc doctor/);
      const j = await rxrpc(['stats', '--json'], { root });
      expect(j.code).toBe(3);
      expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, command: 'stats', exitCode: 3, error: { code: 'ERR_RXRPC_NO_PROC' } });
    });

    test('the files read from the root, shown as /proc/net/rxrpc; unknown and unreadable files are named, not fatal', async () => {
      mkdirSync(proc(), { recursive: true });
      cpSync(dir(KERNELS[0], 'in-flight'), proc(), { recursive: true });
      writeFileSync(join(proc(), 'future'), 'Proto Something\n');
      mkdirSync(join(proc(), 'conns.d'));
      const r = await rxrpc(['stats', '--json'], { root });
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ ok: true, dir: '/proc/net/rxrpc', files: ['calls', 'conns', 'conns.d', 'future', 'locals', 'peers'] });
      expect(doc.other).toEqual({
        future: 'not a file this command knows',
        'conns.d': expect.stringMatching(/^unreadable: EISDIR/),
      });
      expect(doc.summary.calls).toMatchObject({ active: 7, preallocated: 20 });
      expect(doc.tables).toBeUndefined();
    });

    test('aborted calls by code and name, connections by state, lines that do not fit, in text and --list', async () => {
      mkdirSync(proc(), { recursive: true });
      writeFileSync(join(proc(), 'calls'), [
        'Proto Local Remote SvID ConnID CallID End Use State Abort DebugId TxSeq TW RxSeq RW RxSerial RxTimo',
        'UDP 127.0.0.1:7001 127.0.0.1:2 34 733fd72c 0000000a Svc  1 Complete 0005ac03 0000000b 00000000 01 00000001 00 00000000 0011e7',
        'UDP 127.0.0.1:7001 127.0.0.1:2 34 733fd72c 0000000b Svc  1 Complete 0005ac03 0000000c 00000000 01 00000001 00 00000000 0011e7',
        'UDP 127.0.0.1:7001 127.0.0.1:3 34 733fd730 00000001 Clt  1 ClAwtRpl fffffe39 0000000d 00000000 01 00000001 00 00000000 0011e7',
        'UDP 127.0.0.1:7001 0.0.0.0:0 34 00000000 00000000 Svc  1 SvPrealc 00000000 0000000e',
      ].join('\n') + '\n');
      writeFileSync(join(proc(), 'conns'), [
        'Proto Local Remote SvID ConnID End Use State Key Serial ISerial CallId0 CallId1 CallId2 CallId3',
        'UDP 127.0.0.1:7001 127.0.0.1:2 34 733fd72c Svc 1 SvSecure - 00000002 00000001 0000000b 00000000 00000000 00000000',
        'UDP 127.0.0.1:7001 127.0.0.1:3 34 733fd730 Clt 1 Client - 00000001 00000001 00000001 00000000 00000000 00000000',
      ].join('\n') + '\n');
      const r = await rxrpc(['stats', '--list'], { root });
      expect(r.code).toBe(0);
      // 0x5ac03 = 371715; -455 is RXGEN_OPCODE.
      expect(r.stdout).toMatch(/calls +3 active \(1 client, 2 server\), 0 preallocated server calls/);
      expect(r.stdout).toMatch(/aborted +371715 2, -455 \(RXGEN_OPCODE\) 1/);
      expect(r.stdout).toMatch(/connections +2 \(1 client, 1 server\), 0 preallocated/);
      expect(r.stdout).toMatch(/by state +Client 1, SvSecure 1/);
      expect(r.stdout).toMatch(/1 line\(s\) did not fit their header \(see --list --json\)/);
      expect(r.stdout).toMatch(/\n {2}\(unparsed\) UDP 127\.0\.0\.1:7001 0\.0\.0\.0:0 34 00000000 00000000 Svc {2}1 SvPrealc 00000000 0000000e\n/);
      // --list prints IDs as the kernel writes them (hex), services and aborts in decimal.
      expect(r.stdout).toMatch(/127\.0\.0\.1:3 +52 +733fd730 +1 +Clt +1 +ClAwtRpl +-455 /);
      const j = JSON.parse((await rxrpc(['stats', '--list', '--json'], { root })).stdout);
      expect(j.summary.unparsedLines).toBe(1);
      expect(j.summary.calls.aborted).toEqual([{ code: 371715, count: 2 }, { code: -455, name: 'RXGEN_OPCODE', count: 1 }]);
      expect(j.tables.calls.unparsed).toHaveLength(1);
    });
  });

  test('stats: --timeout and --rxstats need HOST:PORT, HOST:PORT needs --rxstats', async () => {
    for (const args of [['stats', '--rxstats'], ['stats', '--timeout', '5']]) {
      const r = await rxrpc([...args, '--from', dir(KERNELS[0], 'in-flight')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--(rxstats|timeout) goes with HOST:PORT/);
    }
    const r = await rxrpc(['stats', '127.0.0.1:7003']);
    expect(r.code).toBe(2);
  });
});
