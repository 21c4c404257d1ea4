/**
 * Property-based targets for every encoder and decoder of the library: the
 * sockaddr and control-message codecs, RawSocket's decoding of the records
 * the addon fills (driven through the fake kernel), the XDR writer and
 * reader, and the codecs rxgen generates (for the project's VL interface,
 * interfaces/vl.xg, compiled once per process). Each target is a fast-check property: round trips must give back
 * what went in, and arbitrary input must either decode or fail with one of
 * the library's typed errors, never anything else.
 *
 * Used by test/unit/fuzz.test.ts (a few hundred runs each, in npm test) and
 * by scripts/fuzz.ts (npm run fuzz -- --execs N).
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeControl, decodeSockaddr, encodeControl, encodeSockaddr, findCallId, formatIp, parseIp, SendControl,
} from '../lib/codec';
import {
  MSG_CTRUNC, MSG_EOR, MSG_MORE, MSG_TRUNC, RXRPC_ABORT, RXRPC_ACK, RXRPC_BUSY, RXRPC_CHARGE_ACCEPT,
  RXRPC_EXCLUSIVE_CALL, RXRPC_LOCAL_ERROR, RXRPC_NET_ERROR, RXRPC_NEW_CALL, RXRPC_SET_CALL_TIMEOUT, RXRPC_TX_LENGTH,
  RXRPC_UPGRADE_SERVICE, RXRPC_USER_CALL_ID, SOL_RXRPC,
} from '../lib/constants';
import { InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError } from '../lib/errors';
import { RawSocket, ReceivedMessage } from '../lib/socket';
import { generate } from '../lib/rxgen';
import { XdrReader, XdrWriter } from '../lib/xdr';
import { FakeKernel, FakeSocket } from './fake-kernel';
import { Arbitraries, compile, LIB, plain, ROOT } from './unit/rxgen-support';

/** One fuzz target: a name and its property. */
export interface Target {
  name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  property: fc.IProperty<any>;
}

const TYPED_CODES: ReadonlyMap<Function, string> = new Map<Function, string>([
  [MalformedError, 'ERR_RXRPC_MALFORMED'],
  [InvalidArgTypeError, 'ERR_INVALID_ARG_TYPE'],
  [OutOfRangeError, 'ERR_OUT_OF_RANGE'],
  [InvalidArgValueError, 'ERR_INVALID_ARG_VALUE'],
]);

/** Rethrows anything that is not one of `allowed` with its code and a message. */
function expectTyped(err: unknown, allowed: readonly Function[]): void {
  const ok = allowed.some((cls) => err instanceof cls && (err as { code?: string }).code === TYPED_CODES.get(cls) &&
    (err as Error).message.length > 0);
  if (!ok) throw new Error(`expected one of ${allowed.map((c) => c.name).join(', ')}, got ${String(err)}`, { cause: err });
}

/** Runs `fn`; a throw must be one of the typed errors in `allowed`. */
function resultOrTyped<T>(fn: () => T, allowed: readonly Function[]): T | undefined {
  try {
    return fn();
  } catch (err) {
    expectTyped(err, allowed);
    return undefined;
  }
}

function check(condition: boolean, what: string, detail?: unknown): void {
  if (!condition) throw new Error(`${what}${detail === undefined ? '' : `: ${JSON.stringify(detail, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`}`);
}

const ARGUMENT_ERRORS = [InvalidArgTypeError, OutOfRangeError, InvalidArgValueError] as const;
const DECODE_ERRORS = [MalformedError, ...ARGUMENT_ERRORS] as const;

// ---------------------------------------------------------------------------
// Inputs

/** Bytes placed at an arbitrary offset of a larger buffer (decoders must honour byteOffset). */
const placedBytes = (maxLength: number) =>
  fc.tuple(fc.uint8Array({ maxLength }), fc.nat(15), fc.nat(15)).map(([bytes, before, after]) => {
    const backing = new Uint8Array(before + bytes.length + after).fill(0xa5);
    backing.set(bytes, before);
    return backing.subarray(before, before + bytes.length);
  });

/** A length argument: mostly honest, sometimes anything a caller could pass. */
const lengthFor = (bytes: Uint8Array) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: bytes.length }) },
    { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, bytes.length + 1, 2 ** 32, NaN)) },
  );

const ipAddress = fc.oneof(fc.ipV4(), fc.ipV6());

/** IPv6 text as the WHATWG URL serialiser writes it (RFC 5952 but for mapped IPv4). */
function canonicalIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

const sockaddrValue = fc.record({ service: fc.integer({ min: 0, max: 0xffff }), address: ipAddress, port: fc.integer({ min: 0, max: 0xffff }) });

interface CmsgSpec {
  level: number;
  type: number;
  data: Uint8Array;
  /** Added to the honest cmsg_len (as a u64, so negative values wrap). */
  lenDelta: bigint;
}

function writeCmsgs(specs: readonly CmsgSpec[]): Buffer {
  const parts = specs.map((s) => {
    const len = 16 + s.data.length;
    const b = Buffer.alloc((len + 7) & ~7);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(len) + s.lenDelta), 0);
    b.writeInt32LE(s.level, 8);
    b.writeInt32LE(s.type, 12);
    b.set(s.data, 16);
    return b;
  });
  return Buffer.concat(parts);
}

const cmsgSpec: fc.Arbitrary<CmsgSpec> = fc.record({
  level: fc.oneof({ weight: 5, arbitrary: fc.constant(SOL_RXRPC) }, { weight: 1, arbitrary: fc.integer() }),
  type: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 20 }) }, { weight: 1, arbitrary: fc.integer() }),
  data: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 24 })),
  lenDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.bigInt({ min: -24n, max: 24n }) },
    { weight: 1, arbitrary: fc.bigInt({ min: -(1n << 63n), max: 1n << 63n }) }),
});

const callIdValue = fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

function callIdCmsg(id: number): CmsgSpec {
  const data = Buffer.alloc(8);
  data.writeBigUInt64LE(BigInt(id));
  return { level: SOL_RXRPC, type: RXRPC_USER_CALL_ID, data, lenDelta: 0n };
}

/** What the kernel sends: a call id and at most one terminal message, in either order. */
const kernelControl = fc.record({
  callId: callIdValue,
  terminal: fc.option(fc.record({
    type: fc.constantFrom(RXRPC_ABORT, RXRPC_ACK, RXRPC_NET_ERROR, RXRPC_LOCAL_ERROR, RXRPC_BUSY, RXRPC_NEW_CALL),
    code: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  }), { nil: undefined }),
  first: fc.boolean(),
}).map(({ callId, terminal, first }) => {
  const specs: CmsgSpec[] = [callIdCmsg(callId)];
  if (terminal) {
    const data = Buffer.alloc(terminal.type === RXRPC_ACK || terminal.type === RXRPC_BUSY || terminal.type === RXRPC_NEW_CALL ? 0 : 4);
    if (data.length) data.writeInt32LE(terminal.code);
    const spec = { level: SOL_RXRPC, type: terminal.type, data, lenDelta: 0n };
    if (first) specs.unshift(spec);
    else specs.push(spec);
  }
  return { callId, terminal, bytes: writeCmsgs(specs) };
});

const KINDS: Record<number, ReceivedMessage['kind']> = {
  [RXRPC_ABORT]: 'abort', [RXRPC_ACK]: 'ack', [RXRPC_NET_ERROR]: 'net-error', [RXRPC_LOCAL_ERROR]: 'local-error',
  [RXRPC_BUSY]: 'busy', [RXRPC_NEW_CALL]: 'new-call',
};

function expectedCode(terminal: { type: number; code: number } | undefined): number {
  if (!terminal) return 0;
  if (terminal.type === RXRPC_ABORT) return terminal.code;
  if (terminal.type === RXRPC_NET_ERROR || terminal.type === RXRPC_LOCAL_ERROR) return terminal.code >>> 0;
  return 0;
}

// ---------------------------------------------------------------------------
// sockaddr_rxrpc

const sockaddrRoundTrip = fc.property(sockaddrValue, (addr) => {
  const bytes = encodeSockaddr(addr);
  check(bytes.length === 36, 'encoded sockaddr_rxrpc is 36 bytes', bytes.length);
  const d = decodeSockaddr(bytes);
  const v6 = addr.address.includes(':');
  check(d.family === (v6 ? 'IPv6' : 'IPv4') && d.service === addr.service && d.port === addr.port, 'fields survive', { addr, d });
  check(Buffer.from(parseIp(d.address)).equals(Buffer.from(parseIp(addr.address))), 'address bytes survive', { addr, d });
  if (v6 && !d.address.startsWith('::ffff:')) check(d.address === canonicalIPv6(addr.address), 'IPv6 text is canonical', { addr, d });
  if (!v6) check(d.address === addr.address, 'IPv4 text survives', { addr, d });
  check(encodeSockaddr(d).equals(bytes), 're-encoding gives the same bytes', { addr, d });
});

const sockaddrDecode = fc.property(
  fc.oneof(placedBytes(48), sockaddrValue.chain((a) => fc.tuple(fc.constant(encodeSockaddr(a)), fc.nat(35), fc.nat(255)).map(([b, at, v]) => {
    const copy = Buffer.from(b);
    copy[at] = v;
    return copy;
  }))).chain((bytes) => fc.tuple(fc.constant(bytes), lengthFor(bytes))),
  ([bytes, length]) => {
    const d = resultOrTyped(() => decodeSockaddr(bytes, length), DECODE_ERRORS);
    if (!d) return;
    check(Number.isInteger(d.service) && d.service >= 0 && d.service <= 0xffff, 'service is a u16', d);
    check(Number.isInteger(d.port) && d.port >= 0 && d.port <= 0xffff, 'port is a u16', d);
    const ip = parseIp(d.address);
    check(ip.length === (d.family === 'IPv4' ? 4 : 16), 'address matches its family', d);
    const at = d.family === 'IPv4' ? 12 : 16;
    check(Buffer.from(ip).equals(Buffer.from(bytes.subarray(at, at + ip.length))), 'address comes from the transport', d);
  },
);

const sockaddrEncode = fc.property(
  fc.oneof(
    fc.anything(),
    fc.record({
      service: fc.oneof(fc.integer({ min: -2, max: 0x10001 }), fc.double(), fc.anything()),
      address: fc.oneof(ipAddress, fc.string(), fc.constantFrom('::ffff:1.2.3.4', 'fe80::1%eth0', 'localhost', '1.2.3.4.5'), fc.anything()),
      port: fc.oneof(fc.integer({ min: -2, max: 0x10001 }), fc.double(), fc.anything()),
    }),
  ),
  (addr) => {
    const b = resultOrTyped(() => encodeSockaddr(addr as never), ARGUMENT_ERRORS);
    if (b) check(b.length === 36 && b.readUInt16LE(0) === 33, 'a sockaddr_rxrpc', b.length);
  },
);

// ---------------------------------------------------------------------------
// Control messages

const sendControl: fc.Arbitrary<SendControl> = fc.record({
  callId: callIdValue,
  abort: fc.integer({ min: -0x80000000, max: 0xffffffff }).filter((c) => c !== 0),
  exclusive: fc.boolean(),
  upgrade: fc.boolean(),
  txLength: fc.oneof(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.bigInt({ min: 0n, max: (1n << 63n) - 1n })),
  timeouts: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 3 }) as unknown as fc.Arbitrary<[number]>,
  chargeAccept: fc.boolean(),
}, { requiredKeys: ['callId'] });

const controlRoundTrip = fc.property(sendControl, (ctl) => {
  const bytes = encodeControl(ctl);
  check(bytes.length % 8 === 0, 'control messages are padded to 8 bytes', bytes.length);
  const d = decodeControl(bytes);
  check(d.callId === ctl.callId, 'call id survives', { ctl, d });
  check(d.kind === (ctl.abort === undefined ? 'data' : 'abort'), 'kind', { ctl, d });
  check(d.code === (ctl.abort === undefined ? 0 : ctl.abort | 0), 'abort code (signed)', { ctl, d });
  const sendOnly = [
    ctl.exclusive && RXRPC_EXCLUSIVE_CALL, ctl.upgrade && RXRPC_UPGRADE_SERVICE, ctl.txLength !== undefined && RXRPC_TX_LENGTH,
    ctl.timeouts !== undefined && RXRPC_SET_CALL_TIMEOUT, ctl.chargeAccept && RXRPC_CHARGE_ACCEPT,
  ].filter((t): t is number => typeof t === 'number');
  check(JSON.stringify(d.unknown) === JSON.stringify(sendOnly), 'send-only messages in order', { ctl, d });
  check(findCallId(bytes) === ctl.callId, 'findCallId finds the call id', { ctl });
  // Values sit where the kernel reads them.
  let off = 0;
  while (off < bytes.length) {
    const len = Number(bytes.readBigUInt64LE(off));
    const type = bytes.readInt32LE(off + 12);
    if (type === RXRPC_TX_LENGTH) check(bytes.readBigInt64LE(off + 16) === BigInt(ctl.txLength!), 'tx length', ctl);
    if (type === RXRPC_SET_CALL_TIMEOUT) {
      check(len === 16 + 4 * ctl.timeouts!.length, 'timeouts length', ctl);
      ctl.timeouts!.forEach((t, i) => check(bytes.readUInt32LE(off + 16 + 4 * i) === t, 'timeout value', ctl));
    }
    off += (len + 7) & ~7;
  }
});

const controlDecode = fc.property(
  fc.oneof(
    kernelControl.map((k) => ({ bytes: k.bytes as Uint8Array, known: k })),
    fc.array(cmsgSpec, { maxLength: 5 }).map((specs) => ({ bytes: writeCmsgs(specs) as Uint8Array, known: undefined })),
    fc.tuple(fc.array(cmsgSpec, { maxLength: 4 }), fc.nat(80)).map(([specs, cut]) => ({ bytes: writeCmsgs(specs).subarray(0, cut) as Uint8Array, known: undefined })),
    placedBytes(140).map((bytes) => ({ bytes, known: undefined })),
  ).chain((c) => fc.tuple(fc.constant(c), c.known ? fc.constant(undefined) : lengthFor(c.bytes))),
  ([{ bytes, known }, length]) => {
    const d = resultOrTyped(() => decodeControl(bytes, length), DECODE_ERRORS);
    const found = resultOrTyped(() => findCallId(bytes, length), ARGUMENT_ERRORS);
    check(found === undefined || Number.isSafeInteger(found), 'findCallId gives a safe integer or nothing', found);
    if (known) {
      check(d !== undefined, 'what the kernel sends decodes');
      check(d!.callId === known.callId && d!.kind === (known.terminal ? KINDS[known.terminal.type] : 'data') &&
        d!.code === expectedCode(known.terminal) && d!.unknown.length === 0, 'decoded as sent', { known, d });
    }
    if (!d) return;
    if (d.oob) {
      // An out-of-band message (a challenge, a response's outcome) belongs to no call: call id -1
      // unless an RXRPC_USER_CALL_ID came with it.
      check(d.kind === 'challenge' || d.kind === 'responded', 'an OOB message is a challenge or a response\'s outcome', d);
      check(d.callId === -1 || (Number.isSafeInteger(d.callId) && d.callId >= 0), 'an OOB message\'s call id is -1 or a safe integer', d);
      return;
    }
    check(Number.isSafeInteger(d.callId) && d.callId >= 0, 'call id is a safe integer', d);
    check(found !== undefined, 'findCallId finds a call id wherever decodeControl does', d);
  },
);

const controlEncode = fc.property(
  fc.oneof(
    fc.anything(),
    fc.record({
      callId: fc.oneof(callIdValue, fc.integer({ min: -3, max: 3 }), fc.double(), fc.constant(2 ** 53), fc.anything()),
      abort: fc.oneof(fc.integer(), fc.constantFrom(0, 0x100000000, -0x80000001), fc.double(), fc.anything()),
      exclusive: fc.anything(),
      upgrade: fc.anything(),
      txLength: fc.oneof(fc.integer(), fc.bigInt(), fc.double(), fc.anything()),
      timeouts: fc.oneof(fc.array(fc.oneof(fc.integer(), fc.double()), { maxLength: 4 }), fc.anything()),
      chargeAccept: fc.anything(),
    }, { requiredKeys: [] }),
  ),
  (ctl) => {
    const b = resultOrTyped(() => encodeControl(ctl as never), ARGUMENT_ERRORS);
    if (b) check(decodeControl(b).callId === (ctl as SendControl).callId, 'what encodes decodes', ctl);
  },
);

// ---------------------------------------------------------------------------
// Received-message records, through RawSocket and the fake kernel

interface RecordSpec {
  data: Buffer;
  flags: number;
  name: Buffer;
  control: Buffer;
  nameLength?: number;
  controlLength?: number;
  dataOffset?: number;
  dataLength?: number;
  /** What the record says when it was built whole (undefined for corrupt ones). */
  expect?: { callId: number; kind: ReceivedMessage['kind']; code: number; addr: { service: number; address: string; port: number } };
}

const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const anyFlags = fc.oneof(
  fc.subarray([MSG_EOR, MSG_MORE, MSG_CTRUNC, MSG_TRUNC]).map((bits) => bits.reduce((a, b) => a | b, 0)),
  int32,
);

/** Peers from a few addresses and ports, so that consecutive records often share some of them (RawSocket caches the last peer). */
const recordPeer = fc.record({
  service: fc.oneof(fc.constantFrom(1, 52, 2503), fc.integer({ min: 0, max: 0xffff })),
  address: fc.oneof(fc.constantFrom('169.254.0.1', '169.254.0.2', 'fe80::1', 'fe80::2', '::ffff:169.254.0.1'), ipAddress),
  port: fc.oneof(fc.constantFrom(7001, 7003), fc.integer({ min: 0, max: 0xffff })),
});

const wholeRecord: fc.Arbitrary<RecordSpec> = fc.record({
  data: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  flags: fc.subarray([MSG_EOR, MSG_MORE]).map((bits) => bits.reduce((a, b) => a | b, 0)),
  addr: recordPeer,
  control: kernelControl,
}).map(({ data, flags, addr, control }) => ({
  data, flags, name: encodeSockaddr(addr), control: control.bytes,
  expect: { callId: control.callId, kind: control.terminal ? KINDS[control.terminal.type] : 'data', code: expectedCode(control.terminal), addr },
}));

const corruptRecord: fc.Arbitrary<RecordSpec> = fc.record({
  data: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  flags: anyFlags,
  name: fc.oneof(recordPeer.map((a) => encodeSockaddr(a)), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))),
  control: fc.oneof(kernelControl.map((k) => k.bytes), fc.array(cmsgSpec, { maxLength: 5 }).map(writeCmsgs),
    fc.uint8Array({ maxLength: 140 }).map((b) => Buffer.from(b))),
  nameLength: fc.option(fc.oneof(fc.integer({ min: -1, max: 40 }), int32), { nil: undefined }),
  controlLength: fc.option(fc.oneof(fc.integer({ min: -1, max: 140 }), int32), { nil: undefined }),
  dataOffset: fc.option(fc.oneof(fc.integer({ min: -1, max: 80 }), int32), { nil: undefined }),
  dataLength: fc.option(fc.oneof(fc.integer({ min: -1, max: 80 }), int32), { nil: undefined }),
}, { requiredKeys: ['data', 'flags', 'name', 'control'] });

const RECORD_BATCH = 8;

/** One RawSocket on a fake kernel, kept across runs (its peer cache included), with what it emits. */
function recordHarness() {
  let state: { socket: RawSocket; fake: FakeSocket; events: Array<ReceivedMessage | Error> } | undefined;
  return () => {
    if (!state) {
      const kernel = new FakeKernel();
      const socket = new RawSocket({ binding: kernel.binding, batch: RECORD_BATCH });
      const events: Array<ReceivedMessage | Error> = [];
      socket.on('message', (m) => events.push({ ...m, data: Buffer.from(m.data) }));
      socket.on('error', (e) => events.push(e));
      state = { socket, fake: kernel.sockets[0], events };
    }
    state.events.length = 0;
    return state;
  };
}

function receivedRecords(): Target['property'] {
  const harness = recordHarness();
  return fc.property(
    fc.array(fc.oneof(wholeRecord, corruptRecord), { minLength: 1, maxLength: RECORD_BATCH }),
    fc.option(fc.constantFrom('EAGAIN', 'ENOBUFS', 'EINVAL'), { nil: undefined }),
    (records, failure) => {
      const { fake, events } = harness();
      const error = failure ? Object.assign(new Error(`recvmsg ${failure}`), { code: failure, errno: -1, syscall: 'recvmsg' }) : undefined;
      fake.deliverBatch(records, error);
      check(events.length === records.length + (error ? 1 : 0), 'one event per record, and the failure', { events: events.length, records: records.length });
      records.forEach((r, i) => {
        const e = events[i];
        if (e instanceof Error) {
          expectTyped(e, [MalformedError]);
          check(r.expect === undefined, 'a whole record never fails', e.message);
          return;
        }
        check(Number.isSafeInteger(e.callId) && e.callId >= 0, 'a message has a call id', e.callId);
        if (e.kind === 'malformed') {
          check(r.expect === undefined, 'a whole record is never malformed', e.error?.message);
          check(e.error instanceof MalformedError && e.data.length === 0, 'a malformed message says why and carries no data', e.error?.message);
          return;
        }
        if (!r.expect) return;
        const x = r.expect;
        check(e.callId === x.callId && e.kind === x.kind && e.code === x.code && e.service === x.addr.service &&
          e.peer.port === x.addr.port && e.peer.family === (x.addr.address.includes(':') ? 'IPv6' : 'IPv4'), 'fields as sent', { x, e });
        check(Buffer.from(parseIp(e.peer.address)).equals(Buffer.from(parseIp(x.addr.address))), 'peer address as sent', { x, e });
        check(e.data.equals(r.data), 'data as sent');
        check(e.end === ((r.flags & MSG_EOR) !== 0) && e.more === ((r.flags & MSG_MORE) !== 0), 'flags as sent', { flags: r.flags, e });
      });
      if (error) check(events[records.length] === error, 'the recvmsg failure comes last, as it was');
    },
  );
}

// ---------------------------------------------------------------------------
// XDR

type XdrOp =
  | { op: 'u32'; v: number } | { op: 'i32'; v: number } | { op: 'u64'; v: bigint } | { op: 'bool'; v: boolean }
  | { op: 'string'; v: string; max: number } | { op: 'fixed'; v: Uint8Array } | { op: 'opaque'; v: Uint8Array; max: number }
  | { op: 'chars'; v: string; size: number } | { op: 'array'; v: number[]; max: number };

const text = fc.string({ unit: 'binary', maxLength: 12 });
const xdrOp: fc.Arbitrary<XdrOp> = fc.oneof(
  fc.record({ op: fc.constant('u32' as const), v: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ op: fc.constant('i32' as const), v: int32 }),
  fc.record({ op: fc.constant('u64' as const), v: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ op: fc.constant('bool' as const), v: fc.boolean() }),
  text.chain((v) => fc.record({ op: fc.constant('string' as const), v: fc.constant(v),
    max: fc.integer({ min: Buffer.byteLength(v), max: 0xffffffff }) })),
  fc.record({ op: fc.constant('fixed' as const), v: fc.uint8Array({ maxLength: 13 }) }),
  fc.uint8Array({ maxLength: 13 }).chain((v) => fc.record({ op: fc.constant('opaque' as const), v: fc.constant(v),
    max: fc.integer({ min: v.length, max: 0xffffffff }) })),
  text.filter((v) => !v.includes('\0')).chain((v) => fc.record({ op: fc.constant('chars' as const), v: fc.constant(v),
    size: fc.integer({ min: Buffer.byteLength(v) + 1, max: Buffer.byteLength(v) + 8 }) })),
  fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 6 }).chain((v) => fc.record({ op: fc.constant('array' as const),
    v: fc.constant(v), max: fc.integer({ min: v.length, max: 0xffffffff }) })),
);

function write(w: XdrWriter, o: XdrOp): void {
  switch (o.op) {
    case 'u32': w.u32(o.v); break;
    case 'i32': w.i32(o.v); break;
    case 'u64': w.u64(o.v); break;
    case 'bool': w.bool(o.v); break;
    case 'string': w.string(o.v, o.max); break;
    case 'fixed': w.fixed(o.v); break;
    case 'opaque': w.opaque(o.v, o.max); break;
    case 'chars': w.chars(o.v, o.size); break;
    case 'array': w.array(o.v, (x, n) => x.u32(n), o.max); break;
  }
}

function read(r: XdrReader, o: XdrOp): unknown {
  switch (o.op) {
    case 'u32': return r.u32();
    case 'i32': return r.i32();
    case 'u64': return r.u64();
    case 'bool': return r.bool();
    case 'string': return r.string(o.max);
    case 'fixed': return r.fixed(o.v.length);
    case 'opaque': return r.opaque(o.max);
    case 'chars': return r.chars(o.size);
    case 'array': return r.array((x) => x.u32(), o.max);
  }
}

const same = (a: unknown, b: unknown): boolean =>
  a instanceof Uint8Array && b instanceof Uint8Array ? Buffer.from(a).equals(Buffer.from(b))
    : Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => same(x, b[i])) : a === b;

const xdrRoundTrip = fc.property(fc.array(xdrOp, { maxLength: 8 }), (ops) => {
  const w = new XdrWriter();
  for (const o of ops) write(w, o);
  const bytes = w.toBuffer();
  check(bytes.length % 4 === 0, 'XDR is 4-byte aligned', bytes.length);
  const r = new XdrReader(bytes);
  for (const o of ops) {
    const v = read(r, o);
    check(same(v, o.v), `${o.op} survives`, { o, v: v instanceof Uint8Array ? [...v] : v });
  }
  r.end();
  // Any strict prefix is short: the reader says so with a MalformedError, never garbage.
  if (bytes.length > 0) {
    const short = new XdrReader(bytes.subarray(0, bytes.length - 4));
    let failed = false;
    for (const o of ops) {
      try {
        read(short, o);
      } catch (err) {
        expectTyped(err, [MalformedError]);
        failed = true;
        break;
      }
    }
    check(failed || short.remaining === 0, 'a short body fails or ends early');
    if (!failed) check(resultOrTyped(() => { short.end(); return true; }, [MalformedError]) === true, 'the prefix was consumed');
  }
});

/** A reader operation with valid arguments (arbitrary ones belong to xdrArguments). */
const readOp = fc.oneof(
  fc.constantFrom('u32', 'i32', 'u64', 'bool', 'end').map((op) => ({ op, arg: 0 })),
  fc.record({ op: fc.constantFrom('fixed', 'opaque', 'string', 'array'), arg: fc.oneof(fc.nat(64), fc.integer({ min: 0, max: 0xffffffff })) }),
  fc.record({ op: fc.constant('chars'), arg: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 0x3fffffff })) }),
);

const xdrReader = fc.property(fc.oneof(placedBytes(64), fc.array(xdrOp, { maxLength: 6 }).map((ops) => {
  const w = new XdrWriter();
  for (const o of ops) write(w, o);
  return w.toBuffer() as Uint8Array;
})), fc.array(readOp, { maxLength: 10 }), (bytes, ops) => {
  const r = new XdrReader(bytes);
  for (const { op, arg } of ops) {
    try {
      switch (op) {
        case 'u32': case 'i32': case 'u64': case 'bool': (r as unknown as Record<string, () => unknown>)[op](); break;
        case 'end': r.end(); break;
        case 'fixed': r.fixed(arg); break;
        case 'opaque': r.opaque(arg); break;
        case 'string': r.string(arg); break;
        case 'chars': r.chars(arg); break;
        case 'array': r.array((x) => x.u32(), arg); break;
      }
    } catch (err) {
      expectTyped(err, [MalformedError]);
    }
    check(r.position >= 0 && r.position <= bytes.length && r.remaining === bytes.length - r.position, 'the reader stays within the bytes', { op, position: r.position });
  }
});

const xdrArguments = fc.property(
  fc.constantFrom('u32', 'i32', 'u64', 'bool', 'fixed', 'opaque', 'string', 'chars', 'array'),
  fc.anything({ withBigInt: true, withTypedArray: true }),
  fc.oneof(fc.constant(undefined), fc.integer({ min: -2, max: 70000 }), fc.double(), fc.anything()),
  placedBytes(32),
  (op, value, arg, bytes) => {
    const w = new XdrWriter();
    const writer = w as unknown as Record<string, (...a: unknown[]) => unknown>;
    resultOrTyped(() => (op === 'array' ? w.array(value as never, (x, n) => x.u32(n as number), arg as never) : writer[op](value, arg)),
      [...ARGUMENT_ERRORS]);
    const r = new XdrReader(bytes);
    const reader = r as unknown as Record<string, (...a: unknown[]) => unknown>;
    resultOrTyped(() => (op === 'array' ? r.array((x) => x.u32(), arg as never) : reader[op](arg)), DECODE_ERRORS);
    resultOrTyped(() => new XdrReader(value as never), [InvalidArgTypeError]);
  },
);

type Encode = (w: XdrWriter, v: unknown) => void;
type Decode = (r: XdrReader) => unknown;
let vlCodecs: { types: string[]; arb: Arbitraries; mod: Record<string, unknown> } | undefined;

/** The generated VL codecs: every type of interfaces/vl.xg, with arbitraries from the generator's model. */
function vl(): NonNullable<typeof vlCodecs> {
  if (vlCodecs) return vlCodecs;
  const file = join(ROOT, 'interfaces', 'vl.xg');
  const out = generate(readFileSync(file, 'utf8'), { fileName: file, importFrom: LIB });
  const compiled = compile({ 'vl.ts': out.files.get('vl.ts')! });
  if (compiled.diagnostics.length) throw new Error(`generated vl.ts does not compile: ${compiled.diagnostics.join('; ')}`);
  vlCodecs = { types: out.model.types.map((t) => t.name).concat('afsUUID'), arb: new Arbitraries(out.model), mod: compiled.load('vl.ts') };
  return vlCodecs;
}

/** Whether `fn` threw MalformedError (anything else thrown fails the property). */
function malformed(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    expectTyped(err, [MalformedError]);
    return true;
  }
}

function vlEncode(type: string, v: unknown): Buffer {
  const w = new XdrWriter();
  (vl().mod[`encode_${type}`] as Encode)(w, v);
  return w.toBuffer();
}

function vlDecode(type: string, bytes: Uint8Array): unknown {
  const r = new XdrReader(bytes);
  const v = (vl().mod[`decode_${type}`] as Decode)(r);
  r.end();
  return v;
}

/** Every type of the generated VL codecs: decodes to what was encoded; with a byte more or less, MalformedError. */
function generatedRoundTrip(): fc.IProperty<[[string, unknown], number]> {
  const { types, arb } = vl();
  return fc.property(fc.constantFrom(...types).chain((t) => arb.of(t).map((v) => [t, v] as [string, unknown])), fc.nat(), ([type, v], cut) => {
    const bytes = vlEncode(type, v);
    check(JSON.stringify(plain(vlDecode(type, bytes)), (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)) ===
      JSON.stringify(plain(v), (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)), `${type} decodes to what was encoded`);
    check(malformed(() => vlDecode(type, Buffer.concat([bytes, Buffer.alloc(1)]))), `${type} with a trailing byte is refused`);
    if (bytes.length > 0) check(malformed(() => vlDecode(type, bytes.subarray(0, cut % bytes.length))), `${type} truncated is refused`);
  });
}

/** Arbitrary bytes given to every generated VL decoder: a value or MalformedError, nothing else. */
function generatedDecode(): fc.IProperty<[string, Uint8Array]> {
  return fc.property(fc.constantFrom(...vl().types), fc.uint8Array({ maxLength: 600 }), (type, bytes) => {
    resultOrTyped(() => vlDecode(type, bytes), [MalformedError]);
  });
}

/** Every target, with a fresh property (and state) per call. */
export function targets(): Target[] {
  return [
    { name: 'sockaddr round trip', property: sockaddrRoundTrip },
    { name: 'sockaddr decode, arbitrary bytes', property: sockaddrDecode },
    { name: 'sockaddr encode, arbitrary values', property: sockaddrEncode },
    { name: 'control round trip', property: controlRoundTrip },
    { name: 'control decode and findCallId, arbitrary bytes', property: controlDecode },
    { name: 'control encode, arbitrary values', property: controlEncode },
    { name: 'received records through RawSocket', property: receivedRecords() },
    { name: 'XDR round trip', property: xdrRoundTrip },
    { name: 'XDR reader, arbitrary bytes', property: xdrReader },
    { name: 'XDR writer and reader, arbitrary arguments', property: xdrArguments },
    { name: 'generated VL codecs round trip', property: generatedRoundTrip() },
    { name: 'generated VL decoders, arbitrary bytes', property: generatedDecode() },
  ];
}
