/**
 * Bad input to the pure parts of the public API: XdrWriter and XdrReader
 * (every method), the address and control-message codecs, and show(), which
 * renders the offending value in every message. A refused read never moves
 * the reader; a malformed body is a MalformedError, never garbage.
 */
import {
  decodeControl, decodeSockaddr, encodeControl, encodeSockaddr, findCallId, formatIp, isTerminal, parseIp,
} from '../../lib/codec';
import { errnoName, errnoNumber } from '../../lib/errno';
import { RXRPC_ABORT, RXRPC_USER_CALL_ID, SOL_RXRPC } from '../../lib/constants';
import { InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError, show } from '../../lib/errors';
import { XdrReader, XdrWriter } from '../../lib/xdr';
import { cmsg } from '../fake-kernel';
import { detachedView, ErrorClass, expectError, guardProcess, NO_VALUE, revokedProxy, thrown, throwingGetters } from './bad-input-harness';

const lastTest = guardProcess();

const TYPE = [InvalidArgTypeError, 'ERR_INVALID_ARG_TYPE'] as const;
const RANGE = [OutOfRangeError, 'ERR_OUT_OF_RANGE'] as const;
const VALUE = [InvalidArgValueError, 'ERR_INVALID_ARG_VALUE'] as const;
const MALFORMED = [MalformedError, 'ERR_RXRPC_MALFORMED'] as const;
type Case = [string, () => unknown, readonly [ErrorClass, string], unknown];

describe('bad input: XdrWriter', () => {
  const w = () => new XdrWriter();
  test.each<Case>([
    ['u32(-1)', () => w().u32(-1), RANGE, -1],
    ['u32(2**32)', () => w().u32(2 ** 32), RANGE, 2 ** 32],
    ['u32(1.5)', () => w().u32(1.5), RANGE, 1.5],
    ['u32(NaN)', () => w().u32(NaN), RANGE, NaN],
    ['u32(Infinity)', () => w().u32(Infinity), RANGE, Infinity],
    ['u32("1")', () => w().u32('1' as never), TYPE, '1'],
    ['u32(null)', () => w().u32(null as never), TYPE, null],
    ['u32(undefined)', () => w().u32(undefined as never), TYPE, undefined],
    ['u32(1n)', () => w().u32(1n as never), TYPE, 1n],
    ['i32(2**31)', () => w().i32(2 ** 31), RANGE, 2 ** 31],
    ['i32(-(2**31) - 1)', () => w().i32(-(2 ** 31) - 1), RANGE, -(2 ** 31) - 1],
    ['i32(-0.5)', () => w().i32(-0.5), RANGE, -0.5],
    ['i32("0")', () => w().i32('0' as never), TYPE, '0'],
    ['u64(-1)', () => w().u64(-1), RANGE, -1],
    ['u64(2**53)', () => w().u64(2 ** 53), RANGE, 2 ** 53],
    ['u64(1.5)', () => w().u64(1.5), RANGE, 1.5],
    ['u64(-1n)', () => w().u64(-1n), RANGE, -1n],
    ['u64(2n**64n)', () => w().u64(2n ** 64n), RANGE, 2n ** 64n],
    ['u64("1")', () => w().u64('1' as never), TYPE, '1'],
    ['u64(null)', () => w().u64(null as never), TYPE, null],
    ['i64(2n**63n)', () => w().i64(2n ** 63n), RANGE, 2n ** 63n],
    ['i64(-(2n**63n) - 1n)', () => w().i64(-(2n ** 63n) - 1n), RANGE, -(2n ** 63n) - 1n],
    ['i64(2**53)', () => w().i64(2 ** 53), RANGE, 2 ** 53],
    ['i64(-1.5)', () => w().i64(-1.5), RANGE, -1.5],
    ['i64(NaN)', () => w().i64(NaN), RANGE, NaN],
    ['i64("-1")', () => w().i64('-1' as never), TYPE, '-1'],
    ['i64(null)', () => w().i64(null as never), TYPE, null],
    ['bool("true")', () => w().bool('true' as never), TYPE, 'true'],
    ['bool(1)', () => w().bool(1 as never), TYPE, 1],
    ['bool(null)', () => w().bool(null as never), TYPE, null],
    ['fixed(null)', () => w().fixed(null as never), TYPE, null],
    ['fixed("abc")', () => w().fixed('abc' as never), TYPE, 'abc'],
    ['fixed([1, 2])', () => w().fixed([1, 2] as never), TYPE, [1, 2]],
    ['fixed(bytes, -1)', () => w().fixed(Buffer.alloc(1), -1), RANGE, -1],
    ['fixed(bytes, NaN)', () => w().fixed(Buffer.alloc(1), NaN), RANGE, NaN],
    ['fixed(bytes, 1.5)', () => w().fixed(Buffer.alloc(1), 1.5), RANGE, 1.5],
    ['fixed(bytes, 2**32)', () => w().fixed(Buffer.alloc(1), 2 ** 32), RANGE, 2 ** 32],
    ['fixed(bytes, Infinity)', () => w().fixed(Buffer.alloc(1), Infinity), RANGE, Infinity],
    ['fixed(3 bytes, 4)', () => w().fixed(Buffer.alloc(3), 4), RANGE, 3],
    ['opaque(undefined)', () => w().opaque(undefined as never), TYPE, undefined],
    ['opaque(bytes, -1)', () => w().opaque(Buffer.alloc(3), -1), RANGE, -1],
    ['opaque(bytes, NaN)', () => w().opaque(Buffer.alloc(3), NaN), RANGE, NaN],
    ['opaque(bytes, Infinity)', () => w().opaque(Buffer.alloc(3), Infinity), RANGE, Infinity],
    ['opaque(3 bytes, 2)', () => w().opaque(Buffer.alloc(3), 2), RANGE, 3],
    ['string(null)', () => w().string(null as never), TYPE, null],
    ['string(42)', () => w().string(42 as never), TYPE, 42],
    ['string(boxed)', () => w().string(new String('x') as never), TYPE, new String('x')],
    ['string(s, 1.5)', () => w().string('x', 1.5), RANGE, 1.5],
    ['string(100,000 characters, 10)', () => w().string('x'.repeat(100000), 10), RANGE, 100000],
    ['chars(null, 8)', () => w().chars(null as never, 8), TYPE, null],
    ['chars("a\\0b", 8)', () => w().chars('a\0b', 8), VALUE, 'a\0b'],
    ['chars(s, 0)', () => w().chars('', 0), RANGE, 0],
    ['chars(s, -1)', () => w().chars('', -1), RANGE, -1],
    ['chars(s, NaN)', () => w().chars('', NaN), RANGE, NaN],
    ['chars(s, 1.5)', () => w().chars('', 1.5), RANGE, 1.5],
    ['chars(s, 2**30)', () => w().chars('', 2 ** 30), RANGE, 2 ** 30],
    ['chars("abc", 3): no room for the NUL', () => w().chars('abc', 3), RANGE, 'abc'],
    ['chars(100,000 characters, 65)', () => w().chars('y'.repeat(100000), 65), RANGE, 'y'.repeat(100000)],
    ['array("abc", each)', () => w().array('abc' as never, () => {}), TYPE, 'abc'],
    ['array(null, each)', () => w().array(null as never, () => {}), TYPE, null],
    ['array([], null)', () => w().array([], null as never), TYPE, null],
    ['array(items, each, -1)', () => w().array([], () => {}, -1), RANGE, -1],
    ['array(items, each, NaN)', () => w().array([], () => {}, NaN), RANGE, NaN],
    ['array(2 items, each, 1)', () => w().array([1, 2], (x, i) => x.u32(i), 1), RANGE, 2],
  ])('%s', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  test('a refused value adds nothing: the writer goes on as before', () => {
    const writer = new XdrWriter().u32(1);
    expect(() => writer.u32(-1)).toThrow(RangeError);
    expect(() => writer.opaque(Buffer.alloc(3), 2)).toThrow(RangeError);
    expect(() => writer.chars('abc', 3)).toThrow(RangeError);
    expect(writer.u32(2).toBuffer()).toEqual(Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]));
  });

  test('an item writer that throws: that error, unchanged', () => {
    const boom = new Error('each');
    expect(thrown(() => new XdrWriter().array([1], () => { throw boom; }))).toBe(boom);
  });
});

describe('bad input: XdrReader', () => {
  test.each<[string, unknown]>([
    ['null', null],
    ['a string', '\0\0\0\x01'],
    ['an array of bytes', [0, 0, 0, 1]],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))],
    ['a Uint16Array', new Uint16Array(2)],
    ['a boxed string', new String('abcd')],
  ])('new XdrReader(%s) throws a TypeError', (_what, bytes) => {
    const err = expectError(thrown(() => new XdrReader(bytes as never)), ...TYPE, bytes);
    expect(err.message).toContain('"bytes"');
  });

  const r = (bytes: number[] | number = 16) => new XdrReader(typeof bytes === 'number' ? Buffer.alloc(bytes) : Uint8Array.from(bytes));
  type Row = [string, (x: XdrReader) => unknown, XdrReader, readonly [ErrorClass, string], unknown, string?];
  test.each<Row>([
    ['fixed(-1)', (x) => x.fixed(-1), r(), RANGE, -1],
    ['fixed(NaN)', (x) => x.fixed(NaN), r(), RANGE, NaN],
    ['fixed(1.5)', (x) => x.fixed(1.5), r(), RANGE, 1.5],
    ['fixed(2**32)', (x) => x.fixed(2 ** 32), r(), RANGE, 2 ** 32],
    ['fixed(Infinity)', (x) => x.fixed(Infinity), r(), RANGE, Infinity],
    ['fixed("4")', (x) => x.fixed('4' as never), r(), TYPE, '4'],
    ['fixed(2**32 - 1) of 16 bytes', (x) => x.fixed(2 ** 32 - 1), r(), MALFORMED, NO_VALUE, 'needs 4294967296 bytes, 16 left'],
    ['fixed(3): the padding is missing', (x) => x.fixed(3), r(3), MALFORMED, NO_VALUE, 'needs 4 bytes, 3 left'],
    ['opaque(-1)', (x) => x.opaque(-1), r(), RANGE, -1],
    ['opaque(NaN)', (x) => x.opaque(NaN), r(), RANGE, NaN],
    ['opaque(Infinity)', (x) => x.opaque(Infinity), r(), RANGE, Infinity],
    ['opaque(null)', (x) => x.opaque(null as never), r(), TYPE, null],
    ['opaque: length over max', (x) => x.opaque(4), r([0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]), MALFORMED, NO_VALUE, 'opaque length 8 exceeds 4'],
    ['opaque: body truncated', (x) => x.opaque(), r([0, 0, 0, 8, 1, 2]), MALFORMED, NO_VALUE, 'opaque[8] needs 8 bytes, 2 left'],
    ['opaque: a length of 2**32 - 1', (x) => x.opaque(), r([0xff, 0xff, 0xff, 0xff]), MALFORMED, NO_VALUE, 'opaque[4294967295]'],
    ['string(-5)', (x) => x.string(-5), r(), RANGE, -5],
    ['string: truncated', (x) => x.string(), r([0, 0, 0, 5, 0x41]), MALFORMED, NO_VALUE, 'opaque[5] needs 8 bytes, 1 left'],
    ['chars(0)', (x) => x.chars(0), r(), RANGE, 0],
    ['chars(-1)', (x) => x.chars(-1), r(), RANGE, -1],
    ['chars(NaN)', (x) => x.chars(NaN), r(), RANGE, NaN],
    ['chars(1.5)', (x) => x.chars(1.5), r(), RANGE, 1.5],
    ['chars("4")', (x) => x.chars('4' as never), r(), TYPE, '4'],
    ['chars(2**30)', (x) => x.chars(2 ** 30), r(), RANGE, 2 ** 30],
    ['chars(2**30 - 1) of 16 bytes', (x) => x.chars(2 ** 30 - 1), r(), MALFORMED, NO_VALUE, 'char[1073741823] needs 4294967292 bytes'],
    ['array(null)', (x) => x.array(null as never), r(), TYPE, null],
    ['array(each, -1)', (x) => x.array((y) => y.u32(), -1), r(), RANGE, -1],
    ['array(each, NaN)', (x) => x.array((y) => y.u32(), NaN), r(), RANGE, NaN],
    ['array: count over max', (x) => x.array((y) => y.u32(), 1), r([0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]), MALFORMED, NO_VALUE, 'array count 2 exceeds 1'],
    ['array: count of 2**32 - 1', (x) => x.array((y) => y.u32()), r([0xff, 0xff, 0xff, 0xff]), MALFORMED, NO_VALUE, 'array count 4294967295 exceeds the 0 bytes left'],
    ['u32 of 3 bytes', (x) => x.u32(), r(3), MALFORMED, NO_VALUE, 'u32 needs 4 bytes, 3 left'],
    ['i32 of 0 bytes', (x) => x.i32(), r(0), MALFORMED, NO_VALUE, 'i32 needs 4 bytes, 0 left'],
    ['u64 of 7 bytes', (x) => x.u64(), r(7), MALFORMED, NO_VALUE, 'u64 needs 8 bytes, 7 left'],
    ['i64 of 4 bytes', (x) => x.i64(), r(4), MALFORMED, NO_VALUE, 'i64 needs 8 bytes, 4 left'],
    ['bool of 2', (x) => x.bool(), r([0, 0, 0, 2]), MALFORMED, NO_VALUE, 'bool is 2'],
    ['bool of 2**32 - 1', (x) => x.bool(), r([0xff, 0xff, 0xff, 0xff]), MALFORMED, NO_VALUE, 'bool is 4294967295'],
    ['end with bytes left', (x) => x.end(), r(5), MALFORMED, NO_VALUE, '5 unread bytes at the end'],
  // A rest parameter: jest takes a callback with more parameters than a row has columns as `done`.
  ])('%s', (...[what, read, reader, [cls, code], value, text]: Row) => {
    const before = reader.position;
    expectError(thrown(() => read(reader)), cls, code, value, text);
    // Refused arguments and short bodies leave the reader where it was (a bad bool or count has been read).
    if (!/^(bool|array: count|opaque: length over|opaque: a length|opaque: body|string: truncated)/.test(what)) {
      expect(reader.position).toBe(before);
    }
  });

  test('an item reader that throws: that error, unchanged', () => {
    const boom = new Error('each');
    expect(thrown(() => new XdrReader(Buffer.from([0, 0, 0, 1, 0, 0, 0, 0])).array(() => { throw boom; }))).toBe(boom);
  });
});

describe('bad input: address codecs', () => {
  const ADDR = { service: 52, address: '127.0.0.1', port: 7003 };
  test.each<Case>([
    ['encodeSockaddr(null)', () => encodeSockaddr(null as never), TYPE, null],
    ['encodeSockaddr("127.0.0.1")', () => encodeSockaddr('127.0.0.1' as never), TYPE, '127.0.0.1'],
    ['encodeSockaddr: service 65536', () => encodeSockaddr({ ...ADDR, service: 65536 }), RANGE, 65536],
    ['encodeSockaddr: service -1', () => encodeSockaddr({ ...ADDR, service: -1 }), RANGE, -1],
    ['encodeSockaddr: service 1.5', () => encodeSockaddr({ ...ADDR, service: 1.5 }), RANGE, 1.5],
    ['encodeSockaddr: service "52"', () => encodeSockaddr({ ...ADDR, service: '52' as never }), TYPE, '52'],
    ['encodeSockaddr: port 65536', () => encodeSockaddr({ ...ADDR, port: 65536 }), RANGE, 65536],
    ['encodeSockaddr: port NaN', () => encodeSockaddr({ ...ADDR, port: NaN }), RANGE, NaN],
    ['encodeSockaddr: port undefined', () => encodeSockaddr({ ...ADDR, port: undefined as never }), TYPE, undefined],
    ['encodeSockaddr: a host name', () => encodeSockaddr({ ...ADDR, address: 'localhost' }), VALUE, 'localhost'],
    ['encodeSockaddr: an empty address', () => encodeSockaddr({ ...ADDR, address: '' }), VALUE, ''],
    ['encodeSockaddr: an IPv6 zone', () => encodeSockaddr({ ...ADDR, address: 'fe80::1%eth0' }), VALUE, 'fe80::1%eth0'],
    ['encodeSockaddr: 100,000 characters', () => encodeSockaddr({ ...ADDR, address: '9'.repeat(100000) }), VALUE, '9'.repeat(100000)],
    ['encodeSockaddr: address null', () => encodeSockaddr({ ...ADDR, address: null as never }), TYPE, null],
    ['parseIp(null)', () => parseIp(null), TYPE, null],
    ['parseIp(0x7f000001)', () => parseIp(0x7f000001), TYPE, 0x7f000001],
    ['parseIp("")', () => parseIp(''), VALUE, ''],
    ['parseIp(" 127.0.0.1")', () => parseIp(' 127.0.0.1'), VALUE, ' 127.0.0.1'],
    ['parseIp("localhost")', () => parseIp('localhost'), VALUE, 'localhost'],
    ['parseIp("127.0.0.1\\0")', () => parseIp('127.0.0.1\0'), VALUE, '127.0.0.1\0'],
    ['parseIp("1.2.3")', () => parseIp('1.2.3'), VALUE, '1.2.3'],
    ['parseIp("::1::2")', () => parseIp('::1::2'), VALUE, '::1::2'],
    ['parseIp("fe80::1%2")', () => parseIp('fe80::1%2'), VALUE, 'fe80::1%2'],
    ['parseIp(100,000 characters)', () => parseIp(':'.repeat(100000)), VALUE, ':'.repeat(100000)],
    ['decodeSockaddr: 10 bytes', () => decodeSockaddr(Buffer.alloc(10)), MALFORMED, NO_VALUE],
    ['decodeSockaddr: length beyond the bytes', () => decodeSockaddr(Buffer.alloc(10), 40), MALFORMED, NO_VALUE],
  ])('%s', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  test.each<[string, (b: Buffer) => void, string]>([
    ['srx_family 2', (b) => b.writeUInt16LE(2, 0), 'srx_family 2 is not AF_RXRPC'],
    ['a transport family of 99', (b) => b.writeUInt16LE(99, 8), 'transport family 99'],
    ['transport_len 28 for AF_INET', (b) => b.writeUInt16LE(28, 6), 'transport_len 28 for AF_INET'],
  ])('decodeSockaddr with %s: MalformedError', (_what, spoil, text) => {
    const b = encodeSockaddr(ADDR);
    spoil(b);
    expectError(thrown(() => decodeSockaddr(b)), ...MALFORMED, NO_VALUE, text);
  });

  const name = () => encodeSockaddr(ADDR);
  test.each<Case>([
    ['decodeSockaddr(null)', () => decodeSockaddr(null as never), TYPE, null],
    ['decodeSockaddr(a string)', () => decodeSockaddr('x'.repeat(36) as never), TYPE, 'x'.repeat(36)],
    ['decodeSockaddr(an array)', () => decodeSockaddr(new Array<number>(36).fill(0) as never), TYPE, new Array<number>(36).fill(0)],
    ['decodeSockaddr(a Uint16Array)', () => decodeSockaddr(new Uint16Array(18) as never), TYPE, new Uint16Array(18)],
    ['decodeSockaddr(bytes, NaN)', () => decodeSockaddr(name(), NaN), RANGE, NaN],
    ['decodeSockaddr(bytes, -1)', () => decodeSockaddr(name(), -1), RANGE, -1],
    ['decodeSockaddr(bytes, 30.5)', () => decodeSockaddr(name(), 30.5), RANGE, 30.5],
    ['decodeSockaddr(bytes, "36")', () => decodeSockaddr(name(), '36' as never), TYPE, '36'],
    ['formatIp(null)', () => formatIp(null as never), TYPE, null],
    ['formatIp([300, 1, 1, 1])', () => formatIp([300, 1, 1, 1] as never), TYPE, [300, 1, 1, 1]],
    ['formatIp(5 bytes)', () => formatIp(new Uint8Array(5)), VALUE, new Uint8Array(5)],
    ['formatIp(0 bytes)', () => formatIp(new Uint8Array(0)), VALUE, new Uint8Array(0)],
    ['formatIp(a Uint16Array of 8)', () => formatIp(new Uint16Array(8) as never), TYPE, new Uint16Array(8)],
    ['formatIp("127.0.0.1")', () => formatIp('127.0.0.1' as never), TYPE, '127.0.0.1'],
  ])('%s', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  test('decodeSockaddr of an IPv6 address cut to 24 bytes: MalformedError', () => {
    const b = encodeSockaddr({ ...ADDR, address: '::1' });
    expectError(thrown(() => decodeSockaddr(b, 24)), ...MALFORMED, NO_VALUE, 'too short for an IPv6 transport');
  });
});

describe('bad input: control-message codecs', () => {
  test.each<Case>([
    ['encodeControl(null)', () => encodeControl(null as never), TYPE, null],
    ['encodeControl(5)', () => encodeControl(5 as never), TYPE, 5],
    ['callId missing', () => encodeControl({} as never), TYPE, undefined],
    ['callId -1', () => encodeControl({ callId: -1 }), RANGE, -1],
    ['callId 1.5', () => encodeControl({ callId: 1.5 }), RANGE, 1.5],
    ['callId 2**53', () => encodeControl({ callId: 2 ** 53 }), RANGE, 2 ** 53],
    ['callId NaN', () => encodeControl({ callId: NaN }), RANGE, NaN],
    ['callId "1"', () => encodeControl({ callId: '1' as never }), TYPE, '1'],
    ['callId 1n', () => encodeControl({ callId: 1n as never }), TYPE, 1n],
    ['abort 0', () => encodeControl({ callId: 1, abort: 0 }), RANGE, 0],
    ['abort 2**32', () => encodeControl({ callId: 1, abort: 2 ** 32 }), RANGE, 2 ** 32],
    ['abort -(2**31) - 1', () => encodeControl({ callId: 1, abort: -(2 ** 31) - 1 }), RANGE, -(2 ** 31) - 1],
    ['abort NaN', () => encodeControl({ callId: 1, abort: NaN }), RANGE, NaN],
    ['abort "1"', () => encodeControl({ callId: 1, abort: '1' as never }), TYPE, '1'],
    ['txLength -1', () => encodeControl({ callId: 1, txLength: -1 }), RANGE, -1],
    ['txLength 1.5', () => encodeControl({ callId: 1, txLength: 1.5 }), RANGE, 1.5],
    ['txLength 2**53', () => encodeControl({ callId: 1, txLength: 2 ** 53 }), RANGE, 2 ** 53],
    ['txLength 2n**63n', () => encodeControl({ callId: 1, txLength: 2n ** 63n }), RANGE, 2n ** 63n],
    ['txLength "5"', () => encodeControl({ callId: 1, txLength: '5' as never }), TYPE, '5'],
    ['timeouts []', () => encodeControl({ callId: 1, timeouts: [] as never }), VALUE, []],
    ['timeouts of 4', () => encodeControl({ callId: 1, timeouts: [1, 2, 3, 4] as never }), VALUE, [1, 2, 3, 4]],
    ['timeouts a string', () => encodeControl({ callId: 1, timeouts: '1' as never }), VALUE, '1'],
    ['timeouts [1.5]', () => encodeControl({ callId: 1, timeouts: [1.5] }), RANGE, 1.5],
    ['timeouts [-1]', () => encodeControl({ callId: 1, timeouts: [-1] }), RANGE, -1],
    ['timeouts [1, 2**32]', () => encodeControl({ callId: 1, timeouts: [1, 2 ** 32] }), RANGE, 2 ** 32],
    ['timeouts ["1"]', () => encodeControl({ callId: 1, timeouts: ['1'] as never }), TYPE, '1'],
    ['timeouts with a hole', () => encodeControl({ callId: 1, timeouts: [, 5] as never }), TYPE, undefined], // eslint-disable-line no-sparse-arrays
    ['exclusive "yes"', () => encodeControl({ callId: 1, exclusive: 'yes' as never }), TYPE, 'yes'],
    ['exclusive 0', () => encodeControl({ callId: 1, exclusive: 0 as never }), TYPE, 0],
    ['exclusive null', () => encodeControl({ callId: 1, exclusive: null as never }), TYPE, null],
    ['upgrade "no"', () => encodeControl({ callId: 1, upgrade: 'no' as never }), TYPE, 'no'],
    ['upgrade 1', () => encodeControl({ callId: 1, upgrade: 1 as never }), TYPE, 1],
    ['chargeAccept "false"', () => encodeControl({ callId: 1, chargeAccept: 'false' as never }), TYPE, 'false'],
    ['chargeAccept an empty string', () => encodeControl({ callId: 1, chargeAccept: '' as never }), TYPE, ''],
  ])('encodeControl: %s', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  const id = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  test.each<[string, Buffer, number | undefined, string]>([
    ['no messages', Buffer.alloc(0), undefined, 'no RXRPC_USER_CALL_ID'],
    ['a header cut short', Buffer.alloc(20), undefined, 'cmsg_len 0 overruns'],
    ['a cmsg_len beyond the buffer', (() => { const b = cmsg(RXRPC_USER_CALL_ID, id(1)); b.writeBigUInt64LE(999n); return b; })(), undefined, 'cmsg_len 999 overruns'],
    ['a cmsg_len of 2**63', (() => { const b = cmsg(RXRPC_USER_CALL_ID, id(1)); b.writeBigUInt64LE(2n ** 63n); return b; })(), undefined, 'overruns'],
    ['a 4-byte call ID', cmsg(RXRPC_USER_CALL_ID, Buffer.alloc(4)), undefined, 'RXRPC_USER_CALL_ID with 4 data bytes (expected 8)'],
    ['a call ID above 2**53', cmsg(RXRPC_USER_CALL_ID, Buffer.alloc(8, 0xff)), undefined, 'user call ID above 2^53'],
    ['an 8-byte abort code', Buffer.concat([cmsg(RXRPC_USER_CALL_ID, id(1)), cmsg(RXRPC_ABORT, Buffer.alloc(8))]), undefined, 'RXRPC_ABORT with 8 data bytes'],
    ['trailing bytes', Buffer.concat([cmsg(RXRPC_USER_CALL_ID, id(1)), Buffer.alloc(5)]), undefined, '5 trailing bytes'],
    ['a length beyond the bytes', cmsg(RXRPC_USER_CALL_ID, id(1)), 100, 'length 100 exceeds the 24 bytes given'],
  ])('decodeControl of %s: MalformedError', (_what, bytes, length, text) => {
    expectError(thrown(() => decodeControl(bytes, length)), ...MALFORMED, NO_VALUE, text);
  });

  test.each<Case>([
    ['decodeControl(null)', () => decodeControl(null as never), TYPE, null],
    ['decodeControl(a string)', () => decodeControl('abc' as never), TYPE, 'abc'],
    ['decodeControl(bytes, NaN)', () => decodeControl(cmsg(RXRPC_USER_CALL_ID, id(1)), NaN), RANGE, NaN],
    ['decodeControl(bytes, -1)', () => decodeControl(cmsg(RXRPC_USER_CALL_ID, id(1)), -1), RANGE, -1],
    ['decodeControl(bytes, 23.5)', () => decodeControl(cmsg(RXRPC_USER_CALL_ID, id(1)), 23.5), RANGE, 23.5],
    ['findCallId(null)', () => findCallId(null as never), TYPE, null],
    ['findCallId(an array)', () => findCallId([1, 2] as never), TYPE, [1, 2]],
    ['findCallId(bytes, -1)', () => findCallId(cmsg(RXRPC_USER_CALL_ID, id(1)), -1), RANGE, -1],
    ['findCallId(bytes, NaN)', () => findCallId(cmsg(RXRPC_USER_CALL_ID, id(1)), NaN), RANGE, NaN],
  ])('%s', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  test('findCallId of what cannot be read is undefined, never a throw', () => {
    expect(findCallId(Buffer.alloc(0))).toBeUndefined();
    expect(findCallId(Buffer.alloc(20))).toBeUndefined();
    expect(findCallId(cmsg(RXRPC_USER_CALL_ID, Buffer.alloc(8, 0xff)))).toBeUndefined();
    expect(findCallId(cmsg(RXRPC_USER_CALL_ID, id(7)), 1000)).toBe(7);
    // A message at another level is skipped.
    const other = cmsg(RXRPC_USER_CALL_ID, id(3));
    other.writeInt32LE(SOL_RXRPC + 1, 8);
    expect(findCallId(Buffer.concat([other, cmsg(RXRPC_USER_CALL_ID, id(9))]))).toBe(9);
  });
});

describe('bad input: errnoName, errnoNumber, isTerminal', () => {
  test.each<Case>([
    ['errnoName(null)', () => errnoName(null as never), TYPE, null],
    ['errnoName("EAGAIN")', () => errnoName('EAGAIN' as never), TYPE, 'EAGAIN'],
    ['errnoName(11n)', () => errnoName(11n as never), TYPE, 11n],
    ['errnoName(1.5)', () => errnoName(1.5), RANGE, 1.5],
    ['errnoName(NaN)', () => errnoName(NaN), RANGE, NaN],
    ['errnoName(Infinity)', () => errnoName(Infinity), RANGE, Infinity],
    ['errnoNumber(11)', () => errnoNumber(11 as never), TYPE, 11],
    ['errnoNumber(null)', () => errnoNumber(null as never), TYPE, null],
    ['isTerminal(null)', () => isTerminal(null as never), TYPE, null],
    ['isTerminal(1)', () => isTerminal(1 as never), TYPE, 1],
    ['isTerminal("end")', () => isTerminal('end' as never), VALUE, 'end'],
    ['isTerminal("")', () => isTerminal('' as never), VALUE, ''],
    ['isTerminal("DATA")', () => isTerminal('DATA' as never), VALUE, 'DATA'],
  ])('%s throws', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  test("errnoName takes Node's negative errno as well as the kernel's positive one; unknown values stay E<n>", () => {
    expect([errnoName(11), errnoName(-11), errnoName(0), errnoName(-200), errnoName(41)]).toEqual(['EAGAIN', 'EAGAIN', 'E0', 'E-200', 'E41']);
    expect([errnoNumber('EAGAIN'), errnoNumber('EWOULDBLOCK'), errnoNumber('')]).toEqual([11, undefined, undefined]);
    expect(['data', 'new-call', 'ack', 'malformed'].map((k) => isTerminal(k as never))).toEqual([false, false, true, true]);
  });
});

describe('bad input: views of a detached ArrayBuffer are refused, never read or written as empty', () => {
  const detachedBuffer = () => {
    const ab = new ArrayBuffer(8);
    const b = Buffer.from(ab);
    structuredClone(ab, { transfer: [ab] });
    return b;
  };
  test.each<[string, () => unknown]>([
    ['new XdrReader(view)', () => new XdrReader(detachedView())],
    ['new XdrReader(a Buffer over it)', () => new XdrReader(detachedBuffer())],
    ['XdrWriter.fixed(view)', () => new XdrWriter().fixed(detachedView())],
    ['XdrWriter.opaque(view)', () => new XdrWriter().opaque(detachedView())],
    ['decodeSockaddr(view)', () => decodeSockaddr(detachedView())],
    ['decodeControl(view)', () => decodeControl(detachedView())],
    ['findCallId(view)', () => findCallId(detachedView())],
    ['formatIp(view)', () => formatIp(detachedView())],
  ])('%s: ERR_INVALID_ARG_VALUE', (_what, fn) => {
    const err = expectError(thrown(fn), ...VALUE, NO_VALUE, '(0, detached)');
    expect(err.message).toMatch(/Received (Uint8Array|Buffer)\(0, detached\)$/);
  });
});

describe('bad input: show() renders the offending value typed and short', () => {
  test.each<[string, unknown, string]>([
    ['a string', 'abc', '"abc"'],
    ['a string with NUL', 'a\0b', '"a\\u0000b"'],
    ['an empty string', '', '""'],
    ['a 100,000-character string', 'z'.repeat(100000), `"${'z'.repeat(80)}..." (100000 characters)`],
    ['NaN', NaN, 'NaN'],
    ['Infinity', -Infinity, '-Infinity'],
    ['a bigint', 2n ** 64n, '18446744073709551616n'],
    ['a symbol', Symbol('s'), 'Symbol(s)'],
    ['a named function', function handler() {}, 'function handler'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['a Buffer', Buffer.alloc(3), 'Buffer(3)'],
    ['an invalid Date', new Date(NaN), 'Invalid Date'],
    ['a Date', new Date(0), 'Date(1970-01-01T00:00:00.000Z)'],
    ['a long array', new Array(100).fill(1), 'Array(100)'],
    ['a circular object', (() => { const o: Record<string, unknown> = {}; o.self = o; return o; })(), '[object Object]'],
    ['an object with a throwing getter', { get x() { throw new Error('no'); } }, '[object Object]'],
  ])('%s', (_what, value, text) => {
    expect(show(value)).toBe(text);
  });

  test.each<[string, unknown, string]>([
    ['-0', -0, '-0'],
    ['a boxed number', new Number(7003), '[Number: 7003]'],
    ['a boxed string', new String('127.0.0.1'), '[String: "127.0.0.1"]'],
    ['a boxed boolean', new Boolean(false), '[Boolean: false]'],
    ['a Uint16Array', new Uint16Array(2), 'Uint16Array(2)'],
    ['a Float64Array', new Float64Array(3), 'Float64Array(3)'],
    ['a DataView', new DataView(new ArrayBuffer(4)), 'DataView(4)'],
    ['an ArrayBuffer', new ArrayBuffer(4), 'ArrayBuffer(4)'],
    ['a SharedArrayBuffer', new SharedArrayBuffer(2), 'SharedArrayBuffer(2)'],
    ['an EventTarget', new EventTarget(), 'EventTarget {}'],
    ['an AbortController', new AbortController(), 'AbortController {}'],
    ['an Error', new TypeError('bad'), '"TypeError: bad"'],
    ['a Proxy whose traps throw', throwingGetters(new Error('trap')), 'Proxy'],
    ['a revoked Proxy', revokedProxy(), 'Proxy'],
    ['an object that throws when stringified and when tagged',
      { toJSON() { throw new Error('json'); }, get [Symbol.toStringTag]() { throw new Error('tag'); } }, 'a value of type object'],
  ])('%s is shown for what it is, and showing it never throws', (_what, value, text) => {
    expect(show(value)).toBe(text);
  });

  test('messages name such values: -0, a boxed port, a typed array, a Proxy', () => {
    expect(thrown(() => new XdrWriter().u32(-0.5))).toHaveProperty('message', expect.stringContaining('Received -0.5'));
    expect(thrown(() => encodeControl({ callId: 1, abort: -0 }))).toHaveProperty('message', expect.stringContaining('Received -0'));
    expect(thrown(() => encodeSockaddr({ service: 1, address: '127.0.0.1', port: new Number(7003) as never })))
      .toHaveProperty('message', expect.stringContaining('Received [Number: 7003]'));
    expect(thrown(() => new XdrReader(new Uint16Array(4) as never))).toHaveProperty('message', expect.stringContaining('Received Uint16Array(4)'));
    expect(thrown(() => parseIp(throwingGetters(new Error('trap'))))).toHaveProperty('message', expect.stringContaining('Received Proxy'));
  });

  test('a large object is cut to 80 characters and says how long it was', () => {
    const text = show({ list: 'w'.repeat(200) });
    expect(text).toMatch(/^\{"list":"w+\.\.\. \(211 characters\)$/);
    expect(text.length).toBeLessThan(120);
  });
});

test('bad input: nothing in this file left an unhandled rejection, an uncaught exception or a warning', lastTest);
