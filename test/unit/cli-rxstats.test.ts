/** RXSTATS requests and replies, and the probe command's summaries, without a kernel. */
import { fsCapabilityNames, ProbeRecord, summariseSeries } from '../../lib/cli/probe';
import {
  decodeRetrieve, decodeWord, queryRequest, retrieveRequest, RXSTATS_OPCODES, RXSTATS_SERVICE, seconds,
} from '../../lib/cli/rxstats';
import { MalformedError, XdrWriter } from '../../lib/index';

/** One rx_function_entry_v1 as the server marshals it: 28 words. */
function entryWords(w: XdrWriter, e: { peer: number; port: number; iface: number; total: number; index: number; calls: bigint; execSumUs: number; execMaxUs: number }): void {
  w.u32(e.peer).u32(e.port).u32(1).u32(e.iface).u32(e.total).u32(e.index);
  for (const v of [e.calls, 1000n, 2000n]) w.u32(Number(v >> 32n)).u32(Number(v & 0xffffffffn));
  const clock = (us: number) => w.u32(Math.floor(us / 1e6)).u32(us % 1e6);
  clock(10); clock(0); clock(1); clock(5); // queue time: sum, squares, min, max
  clock(e.execSumUs); clock(0); clock(2); clock(e.execMaxUs);
}

describe('cli RXSTATS', () => {
  test('requests: the opcode (0 to 10 in rxstat.xg order), Retrieve* with the client\'s format version', () => {
    expect(RXSTATS_SERVICE).toBe(409);
    expect(queryRequest(RXSTATS_OPCODES.QueryRPCStatsVersion).toString('hex')).toBe('00000008');
    expect(queryRequest(RXSTATS_OPCODES.QueryProcessRPCStats).toString('hex')).toBe('00000002');
    expect(retrieveRequest(RXSTATS_OPCODES.RetrievePeerRPCStats).toString('hex')).toBe('0000000100000001');
  });

  test('one-word replies, and a reply with bytes left over is malformed', () => {
    expect(decodeWord(new XdrWriter().u32(1).toBuffer())).toBe(1);
    expect(decodeWord(new XdrWriter().i32(-1).toBuffer(), true)).toBe(-1);
    expect(() => decodeWord(Buffer.alloc(8))).toThrow(MalformedError);
    expect(() => decodeWord(Buffer.alloc(2))).toThrow(MalformedError);
  });

  test('process statistics: 28 words per procedure, 64-bit counters, wildcard peer; peer statistics order their words differently', () => {
    const words = new XdrWriter();
    entryWords(words, { peer: 0xffffffff, port: 0xffffffff, iface: 15, total: 50, index: 3, calls: (1n << 32n) + 7n, execSumUs: 2500000, execMaxUs: 1200 });
    entryWords(words, { peer: 0xc6120001, port: 7001, iface: 15, total: 50, index: 4, calls: 2n, execSumUs: 3000, execMaxUs: 2000 });
    const body = words.toBuffer();
    const list = (w: XdrWriter) => w.u32(body.length / 4).fixed(body);
    const process = decodeRetrieve(list(new XdrWriter().u32(1).u32(1700000000).u32(250000).u32(100)).toBuffer(), false);
    expect(process).toMatchObject({ serverVersion: 1, clock: { sec: 1700000000, usec: 250000 }, statCount: 100, leftoverWords: 0 });
    expect(process.entries).toHaveLength(2);
    expect(process.entries[0]).toMatchObject({ remoteIsServer: true, interfaceId: 15, functions: 50, funcIndex: 3, invocations: (1n << 32n) + 7n, bytesSent: 1000n, bytesReceived: 2000n });
    expect(process.entries[0].peer).toBeUndefined();
    expect(seconds(process.entries[0].executionTime.sum)).toBe(2.5);
    expect(process.entries[0].queueTime.max).toEqual({ sec: 0, usec: 5 });
    expect(process.entries[1]).toMatchObject({ peer: '198.18.0.1', port: 7001, invocations: 2n });
    // RetrievePeerRPCStats: serverVersion, stat_count, then the clock.
    const peer = decodeRetrieve(list(new XdrWriter().u32(1).u32(2).u32(1700000000).u32(5)).toBuffer(), true);
    expect(peer).toMatchObject({ statCount: 2, clock: { sec: 1700000000, usec: 5 } });
  });

  test('an array that is not whole entries keeps the remainder count; a short reply is malformed', () => {
    const r = decodeRetrieve(new XdrWriter().u32(1).u32(0).u32(0).u32(0).u32(3).u32(1).u32(2).u32(3).toBuffer(), false);
    expect(r).toMatchObject({ entries: [], leftoverWords: 3 });
    expect(() => decodeRetrieve(new XdrWriter().u32(1).u32(0).toBuffer(), false)).toThrow(MalformedError);
    expect(() => decodeRetrieve(new XdrWriter().u32(1).u32(0).u32(0).u32(0).u32(1000).toBuffer(), false)).toThrow(/array count 1000 exceeds/);
  });
});

describe('cli probe summaries', () => {
  test('FS capability bits by name, unknown bits shown', () => {
    expect(fsCapabilityNames([0x3])).toEqual(['ERRORTRANS', '64BITFILES']);
    expect(fsCapabilityNames([0x1f, 0xffff])).toEqual(['ERRORTRANS', '64BITFILES', 'WRITELOCKACL', 'SANEACLS', 'unknown bits 0x00000010']);
    expect(fsCapabilityNames([])).toEqual([]);
  });

  test('a series is counted by outcome and by the service that answered', () => {
    const r = (n: number, x: Partial<ProbeRecord>): ProbeRecord => ({ n, ok: true, rttMs: n, ...x });
    const s = summariseSeries([
      r(1, { service: 2503, upgraded: true }), r(2, { service: 52, upgraded: false }),
      r(3, { service: 52, upgraded: false, fallback: 'protocol-error', abortCode: -5 }),
      r(4, { service: 52, upgraded: false, fallback: 'not-supported', abortCode: -455 }),
      { n: 5, ok: false, rttMs: 100, error: { code: 'ETIMEDOUT' } },
    ]);
    expect(s).toEqual({
      probes: 5, upgraded: 1, original: 1, notSupported: 1, protocolError: 1, failed: 1,
      answeredBy: { 52: 3, 2503: 1 }, rttMs: { min: 1, median: 2.5, max: 4 },
    });
  });
});
