import {
  decodeControl, decodeSockaddr, encodeControl, encodeSockaddr, formatIp, isTerminal, parseIp,
  SOCKADDR_RXRPC_SIZE,
} from '../../lib/codec';
import { MalformedError } from '../../lib/errors';

function cmsg(type: number, data: number[] | Buffer = [], level = 272): Buffer {
  const body = Buffer.from(data);
  const len = 16 + body.length;
  const buf = Buffer.alloc((len + 7) & ~7);
  buf.writeBigUInt64LE(BigInt(len), 0);
  buf.writeInt32LE(level, 8);
  buf.writeInt32LE(type, 12);
  body.copy(buf, 16);
  return buf;
}
const callIdMsg = (id: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(id));
  return cmsg(1, b);
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

describe('sockaddr_rxrpc', () => {
  test('IPv4 target is laid out as the kernel expects', () => {
    const b = encodeSockaddr({ service: 52, address: '127.0.0.1', port: 7003 });
    expect(b.length).toBe(SOCKADDR_RXRPC_SIZE);
    expect(b.readUInt16LE(0)).toBe(33); // AF_RXRPC
    expect(b.readUInt16LE(2)).toBe(52); // service, host order
    expect(b.readUInt16LE(4)).toBe(2); // SOCK_DGRAM
    expect(b.readUInt16LE(6)).toBe(16); // sizeof(sockaddr_in)
    expect(b.readUInt16LE(8)).toBe(2); // AF_INET
    expect(b.readUInt16BE(10)).toBe(7003); // port, network order
    expect([...b.subarray(12, 16)]).toEqual([127, 0, 0, 1]);
    expect(b.subarray(16).every((x) => x === 0)).toBe(true);
  });

  test('IPv6 target carries a 28-byte sockaddr_in6', () => {
    const b = encodeSockaddr({ service: 2503, address: '2001:db8::1', port: 1 });
    expect(b.readUInt16LE(6)).toBe(28);
    expect(b.readUInt16LE(8)).toBe(10);
    expect(b.readUInt16BE(10)).toBe(1);
    expect(b.readUInt32BE(12)).toBe(0); // flowinfo
    expect(b.subarray(16, 32).toString('hex')).toBe('20010db8000000000000000000000001');
  });

  test.each([
    ['127.0.0.1'], ['0.0.0.0'], ['255.255.255.255'], ['::1'], ['::'], ['fe80::1'],
    ['2001:db8::8:800:200c:417a'], ['::ffff:10.1.2.3'], ['1:2:3:4:5:6:7:8'], ['1::8'], ['1:0:0:4::8'],
  ])('%s round-trips through encode and decode', (address) => {
    const d = decodeSockaddr(encodeSockaddr({ service: 65535, address, port: 65535 }));
    expect(d).toEqual({ service: 65535, address, port: 65535, family: address.includes(':') ? 'IPv6' : 'IPv4' });
  });

  test('IPv6 text is normalised (RFC 5952)', () => {
    expect(formatIp(parseIp('2001:0DB8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('1:0:2:0:3:0:4:0'))).toBe('1:0:2:0:3:0:4:0');
    expect(formatIp(parseIp('::ffff:0102:0304'))).toBe('::ffff:1.2.3.4');
  });

  test('decoding trusts the transport family when srx_family is 0', () => {
    const b = encodeSockaddr({ service: 1, address: '10.0.0.9', port: 7000 });
    b.writeUInt16LE(0, 0);
    expect(decodeSockaddr(b)).toEqual({ service: 1, family: 'IPv4', address: '10.0.0.9', port: 7000 });
  });

  test('truncated and malformed names are rejected, not misread', () => {
    const v4 = encodeSockaddr({ service: 1, address: '10.0.0.9', port: 7000 });
    const v6 = encodeSockaddr({ service: 1, address: '::1', port: 7000 });
    expect(() => decodeSockaddr(v4, 23)).toThrow(MalformedError);
    expect(() => decodeSockaddr(v4.subarray(0, 10))).toThrow(/too short/);
    expect(() => decodeSockaddr(v6, 30)).toThrow(/too short for an IPv6/);
    expect(() => decodeSockaddr(v4, 40)).toThrow(/exceeds/);
    const badLen = Buffer.from(v4);
    badLen.writeUInt16LE(28, 6);
    expect(() => decodeSockaddr(badLen)).toThrow(/transport_len 28 for AF_INET/);
    const badFamily = Buffer.from(v4);
    badFamily.writeUInt16LE(1, 8);
    expect(() => decodeSockaddr(badFamily)).toThrow(/transport family 1/);
    const badSrx = Buffer.from(v4);
    badSrx.writeUInt16LE(2, 0);
    expect(() => decodeSockaddr(badSrx)).toThrow(/srx_family 2/);
  });

  test('bad targets give typed errors naming the value', () => {
    expect(() => encodeSockaddr({ service: 65536, address: '::1', port: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: 65536, message: expect.stringContaining('"service"') }),
    );
    expect(() => encodeSockaddr({ service: 1.5, address: '::1', port: 1 })).toThrow(RangeError);
    expect(() => encodeSockaddr({ service: 1, address: 'localhost', port: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('"localhost"') }),
    );
    expect(() => encodeSockaddr({ service: 1, address: 'fe80::1%eth0', port: 1 })).toThrow(/zone/);
    expect(() => encodeSockaddr({ service: 1, address: '::1', port: '7000' as unknown as number })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => encodeSockaddr(null as never)).toThrow(TypeError);
  });
});

describe('control messages', () => {
  test('a data send carries only RXRPC_USER_CALL_ID', () => {
    const b = encodeControl({ callId: 0x1_0000_0002 });
    expect(b.length).toBe(24);
    expect(b.readBigUInt64LE(0)).toBe(24n);
    expect(b.readInt32LE(8)).toBe(272);
    expect(b.readInt32LE(12)).toBe(1);
    expect(b.readBigUInt64LE(16)).toBe(0x1_0000_0002n);
  });

  test('every send-side message is encoded with its payload', () => {
    const b = encodeControl({
      callId: 7, abort: -455, exclusive: true, upgrade: true, txLength: 1n << 40n, timeouts: [30, 5000, 1000],
      chargeAccept: true,
    });
    const types: Array<[number, number]> = [];
    for (let off = 0; off < b.length; ) {
      const len = Number(b.readBigUInt64LE(off));
      types.push([b.readInt32LE(off + 12), len - 16]);
      off += (len + 7) & ~7;
    }
    expect(types).toEqual([[1, 8], [2, 4], [10, 0], [11, 0], [12, 8], [13, 12], [14, 0]]);
    expect(b.readUInt32LE(24 + 16)).toBe(0xfffffe39); // -455 as u32
    const tx = 24 + 24 + 16 + 16 + 16;
    expect(b.readBigInt64LE(tx)).toBe(1n << 40n);
    expect([b.readUInt32LE(tx + 8 + 16), b.readUInt32LE(tx + 8 + 20), b.readUInt32LE(tx + 8 + 24)]).toEqual([30, 5000, 1000]);
  });

  test('bad control values give typed errors naming the value', () => {
    expect(() => encodeControl({ callId: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: -1 }));
    expect(() => encodeControl({ callId: 2 ** 53 })).toThrow(RangeError);
    expect(() => encodeControl({ callId: '1' as unknown as number })).toThrow(TypeError);
    expect(() => encodeControl({ callId: 1, abort: 2 ** 32 })).toThrow(/"abort"/);
    expect(() => encodeControl({ callId: 1, abort: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: 0 }));
    expect(() => encodeControl({ callId: 1, txLength: -1 })).toThrow(/"txLength"/);
    expect(() => encodeControl({ callId: 1, txLength: 1n << 63n })).toThrow(RangeError);
    expect(() => encodeControl({ callId: 1, timeouts: [1, 2, 3, 4] as never })).toThrow(/timeouts/);
    expect(() => encodeControl({ callId: 1, timeouts: [1, -2] })).toThrow(/timeouts\[1\]/);
  });

  test.each([
    ['data', [], 'data', 0],
    ['ack', [cmsg(3)], 'ack', 0],
    ['abort', [cmsg(2, u32(-5))], 'abort', -5],
    ['net-error', [cmsg(5, u32(111))], 'net-error', 111],
    ['local-error', [cmsg(7, u32(12))], 'local-error', 12],
    ['busy', [cmsg(6)], 'busy', 0],
  ])('decodes a %s message', (_name, extra, kind, code) => {
    const buf = Buffer.concat([callIdMsg(42), ...(extra as Buffer[])]);
    const d = decodeControl(buf);
    expect(d).toEqual({ callId: 42, kind, code, unknown: [] });
    expect(isTerminal(d.kind)).toBe(kind !== 'data');
  });

  test('call ids up to 2^53-1 decode exactly; larger ones are refused', () => {
    expect(decodeControl(callIdMsg(Number.MAX_SAFE_INTEGER)).callId).toBe(Number.MAX_SAFE_INTEGER);
    const big = Buffer.alloc(8);
    big.writeBigUInt64LE(1n << 60n);
    expect(() => decodeControl(cmsg(1, big))).toThrow(/above 2\^53/);
  });

  test('unknown types are reported, not dropped', () => {
    const d = decodeControl(Buffer.concat([callIdMsg(1), cmsg(19, [1, 2, 3, 4]), cmsg(99, [], 1)]));
    expect(d.unknown).toEqual([19, 99]);
  });

  test('truncated and malformed control buffers are rejected', () => {
    const good = Buffer.concat([callIdMsg(1), cmsg(2, u32(1))]);
    expect(() => decodeControl(good, good.length - 8)).toThrow(/overruns/);
    expect(() => decodeControl(good, good.length + 1)).toThrow(/exceeds/);
    expect(() => decodeControl(Buffer.concat([good, Buffer.alloc(8)]))).toThrow(/8 trailing bytes/);
    expect(() => decodeControl(cmsg(3))).toThrow(/no RXRPC_USER_CALL_ID/);
    expect(() => decodeControl(Buffer.alloc(0))).toThrow(MalformedError);
    expect(() => decodeControl(Buffer.concat([callIdMsg(1), cmsg(2, [1, 2])]))).toThrow(/RXRPC_ABORT with 2 data bytes/);
    expect(() => decodeControl(cmsg(1, [1, 2, 3, 4]))).toThrow(/RXRPC_USER_CALL_ID with 4/);
    const tiny = Buffer.from(callIdMsg(1));
    tiny.writeBigUInt64LE(8n, 0);
    expect(() => decodeControl(tiny)).toThrow(/cmsg_len 8/);
  });
});
