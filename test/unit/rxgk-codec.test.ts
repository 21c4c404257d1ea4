/**
 * The RxGK challenge/response control messages (cmsgs 15 to 19) as pure
 * codecs, and their delivery through RawSocket's decoder and Endpoint.
 */
import { decodeControl, isTerminal } from '../../lib/codec';
import {
  RXRPC_ABORT, RXRPC_CHALLENGED, RXRPC_OOB_ID, RXRPC_RESP_RXGK_APPDATA, RXRPC_RESPOND, RXRPC_RESPONDED,
  RXRPC_USER_CALL_ID, SOL_RXRPC,
} from '../../lib/constants';
import { Endpoint } from '../../lib/endpoint';
import { decodeChallenge, encodeChallenge, encodeOobControl } from '../../lib/security/rxgk';
import { ReceivedMessage } from '../../lib/socket';
import { cmsg, FakeKernel } from '../fake-kernel';

const u64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

/** Splits a control buffer into [type, data] pairs. */
function parse(buf: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let off = 0; off < buf.length;) {
    const len = Number(buf.readBigUInt64LE(off));
    expect(buf.readInt32LE(off + 8)).toBe(SOL_RXRPC);
    out.push([buf.readInt32LE(off + 12), buf.subarray(off + 16, off + len).toString('hex')]);
    off += (len + 7) & ~7;
  }
  return out;
}

describe('RXRPC_CHALLENGED', () => {
  test('struct rxrpc_challenge: u16 service, u8 security index, u8 pad; RxGK appends a u32 enctype', () => {
    const rxgk = encodeChallenge({ service: 2503, securityIndex: 6, enctype: 18 });
    expect(rxgk.toString('hex')).toBe('c7090600' + '12000000');
    expect(decodeChallenge(rxgk)).toEqual({ service: 2503, securityIndex: 6, enctype: 18, extra: Buffer.alloc(0) });
    expect(decodeChallenge(Buffer.from('34000200abcd', 'hex'))).toEqual({ service: 52, securityIndex: 2, enctype: undefined, extra: Buffer.from('abcd', 'hex') });
    expect(() => decodeChallenge(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'ERR_RXRPC_MALFORMED' }));
  });
});

describe('decodeControl with out-of-band messages', () => {
  test('OOB_ID + CHALLENGED is a challenge of no call, with its id', () => {
    const ctl = Buffer.concat([cmsg(RXRPC_OOB_ID, u64(7n)), cmsg(RXRPC_CHALLENGED, encodeChallenge({ service: 100, securityIndex: 6, enctype: 17 }))]);
    const decoded = decodeControl(ctl);
    expect(decoded).toMatchObject({ callId: -1, kind: 'challenge', unknown: [], oob: { id: 7n, challenge: { service: 100, securityIndex: 6, enctype: 17 } } });
    expect(isTerminal(decoded.kind)).toBe(false);
  });

  test('RESPONDED carries its data; CHALLENGED without an OOB_ID, or an OOB_ID alone, is malformed', () => {
    const responded = decodeControl(Buffer.concat([cmsg(RXRPC_OOB_ID, u64(2n ** 63n)), cmsg(RXRPC_RESPONDED, Buffer.from('appdata'))]));
    expect(responded).toMatchObject({ kind: 'responded', oob: { id: 2n ** 63n, responded: Buffer.from('appdata') } });
    expect(() => decodeControl(cmsg(RXRPC_CHALLENGED, Buffer.alloc(4)))).toThrow(/without RXRPC_OOB_ID/);
    expect(() => decodeControl(cmsg(RXRPC_OOB_ID, u64(1n)))).toThrow(/OOB_ID alone/);
    expect(() => decodeControl(cmsg(RXRPC_OOB_ID, Buffer.alloc(4)))).toThrow(/RXRPC_OOB_ID with 4 data bytes/);
  });

  test('ordinary messages are unchanged: a call id is still required', () => {
    expect(decodeControl(cmsg(RXRPC_USER_CALL_ID, u64(5n)))).toEqual({ callId: 5, kind: 'data', code: 0, unknown: [] });
    expect(() => decodeControl(cmsg(RXRPC_ABORT, Buffer.alloc(4)))).toThrow(/no RXRPC_USER_CALL_ID/);
  });
});

describe('encodeOobControl', () => {
  test('a response: OOB_ID then RESPOND, and APPDATA after RESPOND (the kernel requires that order)', () => {
    expect(parse(encodeOobControl({ oobId: 0x0102n }))).toEqual([[RXRPC_OOB_ID, '0201000000000000'], [RXRPC_RESPOND, '']]);
    expect(parse(encodeOobControl({ oobId: 1n, appData: Buffer.from('xyz') }))).toEqual([
      [RXRPC_OOB_ID, '0100000000000000'], [RXRPC_RESPOND, ''], [RXRPC_RESP_RXGK_APPDATA, '78797a'],
    ]);
  });

  test('a refusal: RESPOND with an ABORT code, signed or unsigned; never a USER_CALL_ID', () => {
    expect(parse(encodeOobControl({ oobId: 3n, abort: 1233242884 }))).toEqual([
      [RXRPC_OOB_ID, '0300000000000000'], [RXRPC_RESPOND, ''], [RXRPC_ABORT, Buffer.from(Int32Array.of(1233242884).buffer).toString('hex')],
    ]);
    expect(parse(encodeOobControl({ oobId: 3n, abort: -5 }))[2][1]).toBe('fbffffff');
  });

  test('bad values are refused', () => {
    expect(() => encodeOobControl({ oobId: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => encodeOobControl({ oobId: -1n })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => encodeOobControl({ oobId: 1n, abort: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => encodeOobControl({ oobId: 1n, abort: 5, appData: Buffer.alloc(1) })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

test('Endpoint turns a challenge from recvmsg (no name, OOB_ID + CHALLENGED) into a challenge event and leaves calls alone', () => {
  const kernel = new FakeKernel();
  const endpoint = new Endpoint({ binding: kernel.binding });
  try {
    const seen: unknown[] = [];
    endpoint.on('challenge', (c) => seen.push(c));
    const raw: ReceivedMessage[] = [];
    endpoint.raw.on('message', (m) => raw.push(m));
    kernel.sockets[0].deliver(Buffer.alloc(0), 0, Buffer.alloc(0),
      Buffer.concat([cmsg(RXRPC_OOB_ID, u64(9n)), cmsg(RXRPC_CHALLENGED, encodeChallenge({ service: 2503, securityIndex: 6, enctype: 18 }))]));
    const challenge = { service: 2503, securityIndex: 6, enctype: 18, extra: Buffer.alloc(0) };
    expect(seen).toEqual([{ oobId: 9n, challenge }]);
    expect(raw).toEqual([expect.objectContaining({ kind: 'challenge', callId: -1, peer: { family: 'IPv4', address: '', port: 0 } })]);
    expect(endpoint.stats.strayMessages).toBe(0);
  } finally {
    endpoint.close();
  }
});
