/**
 * Pure encoding and decoding of the structures AF_RXRPC exchanges with user
 * space: struct sockaddr_rxrpc and the SOL_RXRPC control messages. No system
 * calls here; everything is bytes in, values out, so it is tested on any host.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';
import {
  AF_INET, AF_INET6, AF_RXRPC, RXRPC_ABORT, RXRPC_ACK, RXRPC_BUSY, RXRPC_CHARGE_ACCEPT,
  RXRPC_CHALLENGED, RXRPC_EXCLUSIVE_CALL, RXRPC_LOCAL_ERROR, RXRPC_NET_ERROR, RXRPC_NEW_CALL, RXRPC_OOB_ID,
  RXRPC_RESPONDED, RXRPC_SET_CALL_TIMEOUT, RXRPC_TX_LENGTH, RXRPC_UPGRADE_SERVICE, RXRPC_USER_CALL_ID, SOCK_DGRAM,
  SOL_RXRPC,
} from './constants';
import { checkBytes, checkObject, InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError } from './errors';
import { Challenge, decodeChallenge } from './security/rxgk';
import { checkBoolean } from './services';

const LE = endianness() === 'LE';

/** sizeof(struct sockaddr_rxrpc): 8 bytes of header and a 28-byte transport union. */
export const SOCKADDR_RXRPC_SIZE = 36;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;

/** An Rx endpoint: a service on a UDP transport address. */
export interface RxAddress {
  /** Rx service ID (0 only for a client's local endpoint). */
  service: number;
  /** IPv4 or IPv6 address in text form. */
  address: string;
  /** UDP port. */
  port: number;
}

/** A transport address decoded from the kernel, with its family. */
export interface DecodedRxAddress extends RxAddress {
  family: 'IPv4' | 'IPv6';
}

function checkUint(argument: string, value: unknown, max: number): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new OutOfRangeError(argument, `an integer from 0 to ${max}`, value);
  }
  return value;
}

// Addresses already parsed (a client calls the same few peers again and again).
const ipCache = new Map<string, Uint8Array>();
const IP_CACHE_MAX = 1024;

function ipBytes(address: unknown): Uint8Array {
  const hit = typeof address === 'string' ? ipCache.get(address) : undefined;
  if (hit) return hit;
  const ip = parseIp(address);
  if (ipCache.size >= IP_CACHE_MAX) ipCache.clear();
  ipCache.set(address as string, ip);
  return ip;
}

/** Parses an IPv4 or IPv6 text address into its bytes (4 or 16). */
export function parseIp(address: unknown, argument = 'address'): Uint8Array {
  if (typeof address !== 'string') throw new InvalidArgTypeError(argument, 'of type string', address);
  if (isIPv4(address)) return Uint8Array.from(address.split('.').map(Number));
  if (!isIPv6(address)) {
    throw new InvalidArgValueError(argument, 'must be an IPv4 or IPv6 address (no host names, no zone)', address);
  }
  if (address.includes('%')) {
    throw new InvalidArgValueError(argument, 'must not carry an IPv6 zone index', address);
  }
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hex words first.
  let text = address;
  const quad = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(2).map(Number);
    text = `${quad[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const halves = text.split('::');
  const left = parse(halves[0]);
  const right = halves.length > 1 ? parse(halves[1]) : [];
  const words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

/** Formats 4 or 16 address bytes as text (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgTypeError('bytes', 'a Uint8Array', bytes);
  if (bytes.length !== 4 && bytes.length !== 16) {
    throw new InvalidArgValueError('bytes', 'must be 4 (IPv4) or 16 (IPv6) bytes long', bytes);
  }
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  }
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/**
/**
 * The bytes to decode: a Uint8Array that is not a view of a detached
 * ArrayBuffer, and `length` of them (all when left out), checked to be a
 * whole number within `bytes` (a DataView given a negative or fractional
 * length would throw an untyped RangeError, or read nothing). A length
 * beyond the bytes is malformed, or with `clamp` cut to what there is.
 */
function checkSpan(what: string, bytes: unknown, length: unknown, clamp = false): number {
  checkBytes(bytes, 'bytes');
  const all = (bytes as Uint8Array).length;
  if (length === undefined) return all;
  if (typeof length !== 'number') throw new InvalidArgTypeError('length', 'of type number', length);
  if (!Number.isInteger(length) || length < 0) throw new OutOfRangeError('length', 'a non-negative integer', length);
  if (length <= all) return length;
  if (clamp) return all;
  throw new MalformedError(what, `length ${length} exceeds the ${all} bytes given`);
}

/** Encodes a struct sockaddr_rxrpc for bind() or as a sendmsg target. */
export function encodeSockaddr(addr: RxAddress, argument = 'address'): Buffer {
  checkObject(addr, argument, 'an object { service, address, port }');
  const service = checkUint('service', addr.service, 0xffff);
  const port = checkUint('port', addr.port, 0xffff);
  const ip = ipBytes(addr.address);
  const buf = Buffer.alloc(SOCKADDR_RXRPC_SIZE);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  view.setUint16(0, AF_RXRPC, LE);
  view.setUint16(2, service, LE);
  view.setUint16(4, SOCK_DGRAM, LE);
  if (ip.length === 4) {
    view.setUint16(6, SOCKADDR_IN_SIZE, LE);
    view.setUint16(8, AF_INET, LE);
    view.setUint16(10, port, false);
    buf.set(ip, 12);
  } else {
    view.setUint16(6, SOCKADDR_IN6_SIZE, LE);
    view.setUint16(8, AF_INET6, LE);
    view.setUint16(10, port, false);
    buf.set(ip, 16);
  }
  return buf;
}

/**
 * Decodes a struct sockaddr_rxrpc as the kernel returns it in msg_name.
 * The kernel may leave srx_family 0, so the transport family and length are
 * what is trusted; both must agree.
 */
export function decodeSockaddr(bytes: Uint8Array, length?: number): DecodedRxAddress {
  length = checkSpan('sockaddr_rxrpc', bytes, length);
  if (length < 8 + SOCKADDR_IN_SIZE) {
    throw new MalformedError('sockaddr_rxrpc', `${length} bytes is too short (need at least ${8 + SOCKADDR_IN_SIZE})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const srxFamily = view.getUint16(0, LE);
  if (srxFamily !== 0 && srxFamily !== AF_RXRPC) {
    throw new MalformedError('sockaddr_rxrpc', `srx_family ${srxFamily} is not AF_RXRPC`, 0);
  }
  const service = view.getUint16(2, LE);
  const transportLen = view.getUint16(6, LE);
  const family = view.getUint16(8, LE);
  const port = view.getUint16(10, false);
  if (family === AF_INET) {
    if (transportLen !== SOCKADDR_IN_SIZE) {
      throw new MalformedError('sockaddr_rxrpc', `transport_len ${transportLen} for AF_INET (expected 16)`, 6);
    }
    return { service, family: 'IPv4', address: formatIp(bytes.subarray(12, 16)), port };
  }
  if (family === AF_INET6) {
    if (transportLen !== SOCKADDR_IN6_SIZE) {
      throw new MalformedError('sockaddr_rxrpc', `transport_len ${transportLen} for AF_INET6 (expected 28)`, 6);
    }
    if (length < 8 + SOCKADDR_IN6_SIZE) {
      throw new MalformedError('sockaddr_rxrpc', `${length} bytes is too short for an IPv6 transport`);
    }
    return { service, family: 'IPv6', address: formatIp(bytes.subarray(16, 32)), port };
  }
  throw new MalformedError('sockaddr_rxrpc', `transport family ${family} is neither AF_INET nor AF_INET6`, 8);
}

// ---------------------------------------------------------------------------
// Control messages. struct cmsghdr on 64-bit Linux: size_t cmsg_len, int
// cmsg_level, int cmsg_type, then the data; each message is padded to 8.

const CMSG_HDR = 16;
const align = (n: number) => (n + 7) & ~7;

/** Control messages a caller can attach to a sendmsg. */
export interface SendControl {
  /** RXRPC_USER_CALL_ID: the caller's id for the call (required by the kernel). */
  callId: number;
  /** RXRPC_ABORT: abort the call with this code (signed or u32). */
  abort?: number;
  /** RXRPC_EXCLUSIVE_CALL: put a new client call on a connection of its own. */
  exclusive?: boolean;
  /** RXRPC_UPGRADE_SERVICE: ask the server to upgrade the service (first call of a connection). */
  upgrade?: boolean;
  /** RXRPC_TX_LENGTH: total bytes this side will send (first sendmsg of a phase only). */
  txLength?: number | bigint;
  /** RXRPC_SET_CALL_TIMEOUT: hard limit in s, idle in ms, normal (ack expected) in ms. */
  timeouts?: readonly [number] | readonly [number, number] | readonly [number, number, number];
  /** RXRPC_CHARGE_ACCEPT: charge the accept pool with callId (no data). */
  chargeAccept?: boolean;
}

const MAX_CALL_ID = Number.MAX_SAFE_INTEGER;

/** A flag left out or false; anything else is checked (and a non-boolean refused) on the full path. */
const unset = (flag: unknown) => flag === undefined || flag === false;

/** Encodes the control buffer for one sendmsg. */
export function encodeControl(ctl: SendControl): Buffer {
  checkObject(ctl, 'control');
  const { callId } = ctl;
  if (typeof callId !== 'number') throw new InvalidArgTypeError('callId', 'of type number', callId);
  if (!Number.isInteger(callId) || callId < 0 || callId > MAX_CALL_ID) {
    throw new OutOfRangeError('callId', `an integer from 0 to ${MAX_CALL_ID}`, callId);
  }
  if (LE && ctl.abort === undefined && unset(ctl.exclusive) && unset(ctl.upgrade) && ctl.txLength === undefined &&
      ctl.timeouts === undefined && unset(ctl.chargeAccept)) {
    // The common case, a call id alone: one 24-byte control message (host order, little-endian here).
    const one = Buffer.allocUnsafe(CMSG_HDR + 8);
    one.writeUInt32LE(CMSG_HDR + 8, 0); // cmsg_len, a size_t
    one.writeUInt32LE(0, 4);
    one.writeInt32LE(SOL_RXRPC, 8);
    one.writeInt32LE(RXRPC_USER_CALL_ID, 12);
    one.writeUInt32LE(callId % 0x100000000, 16);
    one.writeUInt32LE(Math.floor(callId / 0x100000000), 20);
    return one;
  }
  const parts: Array<[number, number]> = [[RXRPC_USER_CALL_ID, 8]]; // [type, data length]
  let abort = 0;
  if (ctl.abort !== undefined) {
    if (typeof ctl.abort !== 'number') throw new InvalidArgTypeError('abort', 'of type number', ctl.abort);
    if (!Number.isInteger(ctl.abort) || ctl.abort === 0 || ctl.abort < -0x80000000 || ctl.abort > 0xffffffff) {
      throw new OutOfRangeError('abort', 'a non-zero 32-bit integer (signed or unsigned)', ctl.abort);
    }
    abort = ctl.abort >>> 0;
    parts.push([RXRPC_ABORT, 4]);
  }
  if (checkBoolean(ctl.exclusive, 'exclusive')) parts.push([RXRPC_EXCLUSIVE_CALL, 0]);
  if (checkBoolean(ctl.upgrade, 'upgrade')) parts.push([RXRPC_UPGRADE_SERVICE, 0]);
  let txLength = 0n;
  if (ctl.txLength !== undefined) {
    const t = ctl.txLength;
    if (typeof t !== 'number' && typeof t !== 'bigint') {
      throw new InvalidArgTypeError('txLength', 'of type number or bigint', t);
    }
    if ((typeof t === 'number' && (!Number.isSafeInteger(t) || t < 0)) || (typeof t === 'bigint' && (t < 0n || t >= 1n << 63n))) {
      throw new OutOfRangeError('txLength', 'a non-negative integer below 2^63', t);
    }
    txLength = BigInt(t);
    parts.push([RXRPC_TX_LENGTH, 8]);
  }
  let timeouts: readonly number[] = [];
  if (ctl.timeouts !== undefined) {
    if (!Array.isArray(ctl.timeouts) || ctl.timeouts.length < 1 || ctl.timeouts.length > 3) {
      throw new InvalidArgValueError('timeouts', 'must be an array of 1 to 3 integers [hard s, idle ms, normal ms]', ctl.timeouts);
    }
    // Array.from visits a sparse array's holes, which forEach would skip unchecked (and encode as 0).
    timeouts = Array.from(ctl.timeouts as readonly unknown[], (t, i) => checkUint(`timeouts[${i}]`, t, 0xffffffff));
    parts.push([RXRPC_SET_CALL_TIMEOUT, 4 * timeouts.length]);
  }
  if (checkBoolean(ctl.chargeAccept, 'chargeAccept')) parts.push([RXRPC_CHARGE_ACCEPT, 0]);

  const size = parts.reduce((n, [, len]) => n + align(CMSG_HDR + len), 0);
  const buf = Buffer.alloc(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let off = 0;
  for (const [type, len] of parts) {
    view.setBigUint64(off, BigInt(CMSG_HDR + len), LE);
    view.setInt32(off + 8, SOL_RXRPC, LE);
    view.setInt32(off + 12, type, LE);
    const d = off + CMSG_HDR;
    switch (type) {
      case RXRPC_USER_CALL_ID:
        view.setUint32(d, LE ? callId % 0x100000000 : Math.floor(callId / 0x100000000), LE);
        view.setUint32(d + 4, LE ? Math.floor(callId / 0x100000000) : callId % 0x100000000, LE);
        break;
      case RXRPC_ABORT:
        view.setUint32(d, abort, LE);
        break;
      case RXRPC_TX_LENGTH:
        view.setBigInt64(d, txLength, LE);
        break;
      case RXRPC_SET_CALL_TIMEOUT:
        timeouts.forEach((t, i) => view.setUint32(d + 4 * i, t, LE));
        break;
    }
    off += align(CMSG_HDR + len);
  }
  return buf;
}

/** How a received message relates to its call. */
export type MessageKind =
  | 'data' // call data (possibly empty); the call goes on unless the message is terminal
  | 'ack' // RXRPC_ACK: a server call completed successfully
  | 'abort' // RXRPC_ABORT: the call was aborted; `code` holds the abort code
  | 'net-error' // RXRPC_NET_ERROR: `code` holds the errno
  | 'local-error' // RXRPC_LOCAL_ERROR: `code` holds the errno
  | 'busy' // RXRPC_BUSY: the server was busy
  | 'new-call' // RXRPC_NEW_CALL (old kernels only)
  | 'challenge' // RXRPC_OOB_ID + RXRPC_CHALLENGED: a security challenge to answer (no call; callId -1)
  | 'responded'; // RXRPC_OOB_ID + RXRPC_RESPONDED: data of a RESPONSE (defined, not yet emitted by Linux)

/** An out-of-band message: no call, an RXRPC_OOB_ID to answer it by. */
export interface OobInfo {
  id: bigint;
  /** RXRPC_CHALLENGED, decoded. */
  challenge?: Challenge;
  /** RXRPC_RESPONDED data. */
  responded?: Buffer;
}

/** The meaning of one recvmsg's control messages. */
export interface ReceivedControl {
  callId: number;
  kind: MessageKind;
  /** Abort code (signed) or errno, for the kinds that carry one. */
  code: number;
  /** Control message types that were present but are not known here. */
  unknown: number[];
  /** Out-of-band messages only. */
  oob?: OobInfo;
}

/**
 * Decodes the control messages of one recvmsg. Every message from AF_RXRPC
 * carries RXRPC_USER_CALL_ID; a buffer without one, a header that overruns
 * the buffer, or a known message with the wrong size is malformed.
 */
export function decodeControl(bytes: Uint8Array, length?: number): ReceivedControl {
  length = checkSpan('control messages', bytes, length);
  return decodeControlAt(new DataView(bytes.buffer, bytes.byteOffset, length), 0, length);
}

/** Control message types present but not understood: none (shared, frozen). */
const NONE_UNKNOWN: number[] = Object.freeze([]) as unknown as number[];

/** The size check of a known control message. */
function need(dataLen: number, n: number, name: string, off: number): void {
  if (dataLen !== n) throw new MalformedError('control messages', `${name} with ${dataLen} data bytes (expected ${n})`, off);
}

/**
 * decodeControl over `length` bytes of `view` from `start`, the receive
 * path's form: no copy, no BigInt, and nothing allocated but the result
 * (`unknown` is a shared frozen empty array unless some type was unknown).
 * Offsets in errors are relative to `start`.
 */
export function decodeControlAt(view: DataView, start: number, length: number): ReceivedControl {
  let callId: number | undefined;
  let kind: MessageKind = 'data';
  let code = 0;
  let unknown = NONE_UNKNOWN;
  let oob: OobInfo | undefined;
  let off = 0;
  while (off + CMSG_HDR <= length) {
    const at = start + off;
    // cmsg_len is a size_t: anything with high bits set overruns the buffer.
    const lenLo = view.getUint32(at + (LE ? 0 : 4), LE);
    const lenHi = view.getUint32(at + (LE ? 4 : 0), LE);
    const len = lenHi * 0x100000000 + lenLo;
    const level = view.getInt32(at + 8, LE);
    const type = view.getInt32(at + 12, LE);
    if (len < CMSG_HDR || off + len > length) {
      throw new MalformedError('control messages', `cmsg_len ${len} overruns the ${length}-byte buffer`, off);
    }
    const dataLen = len - CMSG_HDR;
    const d = at + CMSG_HDR;
    if (level === SOL_RXRPC) {
      switch (type) {
        case RXRPC_USER_CALL_ID: {
          need(dataLen, 8, 'RXRPC_USER_CALL_ID', off);
          const lo = view.getUint32(LE ? d : d + 4, LE);
          const hi = view.getUint32(LE ? d + 4 : d, LE);
          if (hi > 0x1fffff) throw new MalformedError('control messages', `user call ID above 2^53`, off);
          callId = hi * 0x100000000 + lo;
          break;
        }
        case RXRPC_ABORT:
          need(dataLen, 4, 'RXRPC_ABORT', off);
          kind = 'abort';
          code = view.getInt32(d, LE);
          break;
        case RXRPC_ACK:
          kind = 'ack';
          break;
        case RXRPC_NET_ERROR:
          need(dataLen, 4, 'RXRPC_NET_ERROR', off);
          kind = 'net-error';
          code = view.getUint32(d, LE);
          break;
        case RXRPC_LOCAL_ERROR:
          need(dataLen, 4, 'RXRPC_LOCAL_ERROR', off);
          kind = 'local-error';
          code = view.getUint32(d, LE);
          break;
        case RXRPC_BUSY:
          kind = 'busy';
          break;
        case RXRPC_NEW_CALL:
          kind = 'new-call';
          break;
        case RXRPC_OOB_ID: {
          need(dataLen, 8, 'RXRPC_OOB_ID', off);
          oob = { ...oob, id: view.getBigUint64(d, LE) };
          break;
        }
        case RXRPC_CHALLENGED:
          kind = 'challenge';
          oob = { id: oob?.id ?? -1n, ...oob, challenge: decodeChallenge(new Uint8Array(view.buffer, view.byteOffset + d, dataLen)) };
          break;
        case RXRPC_RESPONDED:
          kind = 'responded';
          oob = { id: oob?.id ?? -1n, ...oob, responded: Buffer.from(new Uint8Array(view.buffer, view.byteOffset + d, dataLen)) };
          break;
        default:
          if (unknown === NONE_UNKNOWN) unknown = [];
          unknown.push(type);
      }
    } else {
      if (unknown === NONE_UNKNOWN) unknown = [];
      unknown.push(type);
    }
    off += align(len);
  }
  if (off < length) throw new MalformedError('control messages', `${length - off} trailing bytes`, off);
  if (oob) {
    // Out-of-band messages belong to no call.
    if (oob.id < 0n) throw new MalformedError('control messages', 'RXRPC_CHALLENGED or RXRPC_RESPONDED without RXRPC_OOB_ID');
    if (kind !== 'challenge' && kind !== 'responded') throw new MalformedError('control messages', 'RXRPC_OOB_ID alone');
    return { callId: callId ?? -1, kind, code, unknown, oob };
  }
  if (callId === undefined) throw new MalformedError('control messages', 'no RXRPC_USER_CALL_ID');
  return { callId, kind, code, unknown };
}

/**
 * The user call ID of a control buffer that does not decode as a whole (a
 * truncated or malformed one), when a well-formed RXRPC_USER_CALL_ID message
 * can still be found in it; undefined otherwise.
 */
export function findCallId(bytes: Uint8Array, length?: number): number | undefined {
  const end = checkSpan('control messages', bytes, length, true);
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  for (let off = 0; off + CMSG_HDR <= end; ) {
    const len = Number(view.getBigUint64(off, LE));
    if (len < CMSG_HDR || off + len > end) return undefined;
    if (view.getInt32(off + 8, LE) === SOL_RXRPC && view.getInt32(off + 12, LE) === RXRPC_USER_CALL_ID && len === CMSG_HDR + 8) {
      const lo = view.getUint32(LE ? off + CMSG_HDR : off + CMSG_HDR + 4, LE);
      const hi = view.getUint32(LE ? off + CMSG_HDR + 4 : off + CMSG_HDR, LE);
      return hi > 0x1fffff ? undefined : hi * 0x100000000 + lo;
    }
    off += align(len);
  }
  return undefined;
}

const KINDS: ReadonlySet<unknown> = new Set([
  'data', 'ack', 'abort', 'net-error', 'local-error', 'busy', 'new-call', 'challenge', 'responded', 'malformed',
]);

/** True for the kinds after which the kernel forgets the call id ('malformed' included: its call cannot go on). */
export function isTerminal(kind: MessageKind | 'malformed'): boolean {
  if (!KINDS.has(kind)) {
    if (typeof kind !== 'string') throw new InvalidArgTypeError('kind', 'of type string', kind);
    throw new InvalidArgValueError('kind', `must be one of ${[...KINDS].join(', ')}`, kind);
  }
  return kind !== 'data' && kind !== 'new-call' && kind !== 'challenge' && kind !== 'responded';
}
