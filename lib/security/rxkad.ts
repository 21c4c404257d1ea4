/**
 * Key payloads for rxkad and YFS-RxGK as the kernel parses them (net/rxrpc
 * key.c, server_key.c, rxkad.c, rxgk.c; include/keys/rxrpc-type.h). Pure
 * functions: every value is checked here, so nothing malformed (and no weak
 * DES key) ever reaches add_key.
 *
 * - Client keys, type "rxrpc": the v1 binary payload (one rxkad token, host
 *   byte order) or the XDR payload (a cell name and 1 to 8 tokens, rxkad or
 *   YFS-RxGK, big-endian).
 * - Server keys, type "rxrpc_s": rxkad "<service>:2" with the 8-byte DES key;
 *   YFS-RxGK "<service>:6:<kvno>:<enctype>" with the enctype's key.
 */
import { endianness } from 'node:os';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from '../errors';

const LE = endianness() === 'LE';

export const RXRPC_SECURITY_NONE = 0;
export const RXRPC_SECURITY_RXKAD = 2;
export const RXRPC_SECURITY_YFS_RXGK = 6;

/** Security levels by name, with the numbers RXRPC_MIN_SECURITY_LEVEL takes. */
export type SecurityLevel = 'clear' | 'auth' | 'encrypt';
export const SECURITY_LEVELS: Readonly<Record<SecurityLevel, number>> = { clear: 0, auth: 1, encrypt: 2 };

/** A point in time: a Date, or whole seconds since the epoch. */
export type Time = Date | number;

/** An rxkad token: what a Kerberos 4 (or kaserver, or aklog) login leaves a client with. */
export interface RxkadToken {
  /** Key version number of the service key that sealed the ticket (256: a Kerberos 5 ticket). */
  kvno: number;
  /** The 8-byte DES session key, also sealed inside the ticket. */
  sessionKey: Uint8Array;
  /** The sealed ticket, passed to the server as it is (1 to 12000 bytes). */
  ticket: Uint8Array;
  /** When the token (and the key made from it) expires: must be in the future. */
  expiry: Time;
  /** XDR form only: the AFS user ID (default 0). */
  viceId?: number;
  /** XDR form only: when the token became valid (default 0). */
  start?: Time;
  /** XDR form only: a token for the user's primary cell. */
  primary?: boolean;
}

/** A YFS-RxGK token (security index 6); the kernel takes it in the XDR form only. */
export interface YfsRxgkToken {
  /** Start and end of validity (sent in 100 ns units). */
  begin: Time;
  end: Time;
  level: SecurityLevel;
  /** Seconds a connection key may be used (0: no limit). */
  lifetime?: number;
  /** Bytes a connection key may protect, as a power of two (0: no limit). */
  bytelife?: number;
  /** Kerberos 5 encryption type; `key` must have its length. */
  enctype: number;
  key: Uint8Array;
  ticket: Uint8Array;
}

export type XdrToken = ({ type: 'rxkad' } & RxkadToken) | ({ type: 'yfs-rxgk' } & YfsRxgkToken);

/** The Kerberos 5 encryption types YFS-RxGK can use in Linux (crypto/krb5), with their key lengths. */
export const RXGK_ENCTYPES: ReadonlyMap<number, { name: string; keyLength: number }> = new Map([
  [17, { name: 'aes128-cts-hmac-sha1-96', keyLength: 16 }],
  [18, { name: 'aes256-cts-hmac-sha1-96', keyLength: 32 }],
  [19, { name: 'aes128-cts-hmac-sha256-128', keyLength: 16 }],
  [20, { name: 'aes256-cts-hmac-sha384-192', keyLength: 32 }],
  [25, { name: 'camellia128-cts-cmac', keyLength: 16 }],
  [26, { name: 'camellia256-cts-cmac', keyLength: 32 }],
]);

// Limits from include/keys/rxrpc-type.h.
const AFSTOKEN_LENGTH_MAX = 16384;
const AFSTOKEN_CELL_MAX = 64;
const AFSTOKEN_MAX = 8;
const AFSTOKEN_RK_TIX_MAX = 12000;
const AFSTOKEN_GK_KEY_MAX = 64;
const AFSTOKEN_GK_TOKEN_MAX = 16384;

// The 4 weak and 12 semi-weak DES keys (FIPS 74), parity bits cleared. A
// weak key is refused by the kernel's DES (ENOKEY from add_key on 7.x) or,
// where its setkey failure is not expected, hits BUG() in rxkad.
const WEAK_DES_KEYS = new Set([
  '0101010101010101', 'fefefefefefefefe', 'e0e0e0e0f1f1f1f1', '1f1f1f1f0e0e0e0e',
  '01fe01fe01fe01fe', 'fe01fe01fe01fe01', '1fe01fe00ef10ef1', 'e01fe01ff10ef10e',
  '01e001e001f101f1', 'e001e001f101f101', '1ffe1ffe0efe0efe', 'fe1ffe1ffe0efe0e',
  '011f011f010e010e', '1f011f010e010e01', 'e0fee0fef1fef1fe', 'fee0fee0fef1fef1',
].map((hex) => Buffer.from(hex, 'hex').map((b) => b & 0xfe).toString()));

/** True for the weak and semi-weak DES keys (parity bits ignored, as DES ignores them). */
export function isWeakDesKey(key: Uint8Array): boolean {
  return key.length === 8 && WEAK_DES_KEYS.has(Buffer.from(key).map((b) => b & 0xfe).toString());
}

export function checkBytes(value: unknown, argument: string, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgTypeError(argument, 'a Uint8Array', value);
  if (value.length < min || value.length > max) {
    throw new OutOfRangeError(`${argument}.length`, min === max ? `${min} bytes` : `${min} to ${max} bytes`, value.length);
  }
  return value;
}

/** An 8-byte DES key that is neither weak nor semi-weak. */
export function checkDesKey(value: unknown, argument: string): Uint8Array {
  const key = checkBytes(value, argument, 8, 8);
  if (isWeakDesKey(key)) throw new InvalidArgValueError(argument, 'must not be a weak or semi-weak DES key', key);
  return key;
}

export function checkUint(value: unknown, argument: string, max = 0xffffffff, min = 0): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(argument, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** Seconds since the epoch of a Time, as a u32. */
export function checkTime(value: unknown, argument: string): number {
  if (value instanceof Date) {
    const t = value.getTime();
    if (!Number.isFinite(t)) throw new InvalidArgValueError(argument, 'must be a valid Date', value);
    return checkUint(Math.floor(t / 1000), argument);
  }
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'a Date or a number of seconds since the epoch', value);
  return checkUint(value, argument);
}

/** An expiry in the future: the kernel makes a key that is expired at once otherwise. */
function checkExpiry(value: unknown, argument: string, now: number): number {
  const expiry = checkTime(value, argument);
  if (expiry <= now) {
    throw new OutOfRangeError(argument, `a time in the future (now is ${now} s since the epoch)`, value instanceof Date ? value.toISOString() : value);
  }
  return expiry;
}

export function checkLevel(value: unknown, argument: string): SecurityLevel {
  if (value !== 'clear' && value !== 'auth' && value !== 'encrypt') {
    throw new InvalidArgValueError(argument, "must be 'clear', 'auth' or 'encrypt'", value);
  }
  return value;
}

function checkObject(value: unknown, argument: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new InvalidArgTypeError(argument, 'an object', value);
  return value as Record<string, unknown>;
}

interface CheckedRxkad {
  kvno: number;
  sessionKey: Uint8Array;
  ticket: Uint8Array;
  expiry: number;
  viceId: number;
  start: number;
  primary: boolean;
}

/** Checks an rxkad token; `now` (seconds) is the reference for its expiry. */
export function checkRxkadToken(value: unknown, argument = 'token', now = Math.floor(Date.now() / 1000)): CheckedRxkad {
  const t = checkObject(value, argument);
  return {
    kvno: checkUint(t.kvno, `${argument}.kvno`),
    sessionKey: checkDesKey(t.sessionKey, `${argument}.sessionKey`),
    ticket: checkBytes(t.ticket, `${argument}.ticket`, 1, AFSTOKEN_RK_TIX_MAX),
    expiry: checkExpiry(t.expiry, `${argument}.expiry`, now),
    viceId: t.viceId === undefined ? 0 : checkUint(t.viceId, `${argument}.viceId`),
    start: t.start === undefined ? 0 : checkTime(t.start, `${argument}.start`),
    primary: t.primary === undefined ? false : checkBoolean(t.primary, `${argument}.primary`),
  };
}

function checkBoolean(value: unknown, argument: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(argument, 'of type boolean', value);
  return value;
}

/**
 * The v1 payload of an "rxrpc" key: u32 version 1, u16 security index 2,
 * u16 ticket length, u32 expiry, u32 kvno, u8 session key[8], the ticket;
 * all in host byte order (struct rxrpc_key_data_v1).
 */
export function encodeRxkadV1Payload(token: RxkadToken, argument = 'token'): Buffer {
  const t = checkRxkadToken(token, argument);
  const buf = Buffer.alloc(24 + t.ticket.length);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  view.setUint32(0, 1, LE);
  view.setUint16(4, RXRPC_SECURITY_RXKAD, LE);
  view.setUint16(6, t.ticket.length, LE);
  view.setUint32(8, t.expiry, LE);
  view.setUint32(12, t.kvno, LE);
  buf.set(t.sessionKey, 16);
  buf.set(t.ticket, 24);
  return buf;
}

/** Big-endian XDR, the small subset the token payload needs. */
class Xdr {
  private parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  i64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    this.parts.push(b);
    return this;
  }
  fixed(bytes: Uint8Array): this {
    this.parts.push(Buffer.from(bytes), Buffer.alloc((4 - (bytes.length % 4)) % 4));
    return this;
  }
  opaque(bytes: Uint8Array): this {
    return this.u32(bytes.length).fixed(bytes);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export const HUNDRED_NS_PER_S = 10000000n;

function checkRxgkToken(value: unknown, argument: string): Buffer {
  const t = checkObject(value, argument);
  const begin = checkTime(t.begin, `${argument}.begin`);
  const end = checkTime(t.end, `${argument}.end`);
  if (end !== 0 && end <= begin) throw new OutOfRangeError(`${argument}.end`, `after begin (${begin})`, t.end);
  const level = SECURITY_LEVELS[checkLevel(t.level, `${argument}.level`)];
  const lifetime = t.lifetime === undefined ? 0 : checkUint(t.lifetime, `${argument}.lifetime`, Number.MAX_SAFE_INTEGER);
  const bytelife = t.bytelife === undefined ? 0 : checkUint(t.bytelife, `${argument}.bytelife`, 63);
  const enctype = checkEnctype(t.enctype, `${argument}.enctype`);
  const key = checkBytes(t.key, `${argument}.key`, 1, AFSTOKEN_GK_KEY_MAX);
  if (key.length !== enctype.keyLength) {
    throw new OutOfRangeError(`${argument}.key.length`, `${enctype.keyLength} bytes for ${enctype.name}`, key.length);
  }
  const ticket = checkBytes(t.ticket, `${argument}.ticket`, 1, AFSTOKEN_GK_TOKEN_MAX);
  return new Xdr()
    .u32(RXRPC_SECURITY_YFS_RXGK)
    .i64(BigInt(begin) * HUNDRED_NS_PER_S)
    .i64(BigInt(end) * HUNDRED_NS_PER_S)
    .i64(BigInt(level))
    .i64(BigInt(lifetime))
    .i64(BigInt(bytelife))
    .i64(BigInt(t.enctype as number))
    .opaque(key)
    .opaque(ticket)
    .bytes();
}

function rxkadXdrBody(value: unknown, argument: string): Buffer {
  const t = checkRxkadToken(value, argument);
  return new Xdr()
    .u32(RXRPC_SECURITY_RXKAD)
    .u32(t.viceId)
    .u32(t.kvno)
    .fixed(t.sessionKey)
    .u32(t.start)
    .u32(t.expiry)
    .u32(t.primary ? 1 : 0)
    .opaque(t.ticket)
    .bytes();
}

/**
 * The XDR payload of an "rxrpc" key (OpenAFS's afs_token.xg): u32 flags 0,
 * the cell name, and 1 to 8 tokens, each {u32 length, u32 security index,
 * body}. The kernel ignores the cell name but requires 1 to 64 printable
 * characters.
 */
export function encodeXdrTokenPayload(cell: string, tokens: readonly XdrToken[]): Buffer {
  if (typeof cell !== 'string') throw new InvalidArgTypeError('cell', 'of type string', cell);
  if (!/^[\x20-\x7e]{1,64}$/.test(cell)) {
    throw new InvalidArgValueError('cell', `must be 1 to ${AFSTOKEN_CELL_MAX} printable ASCII characters`, cell);
  }
  if (!Array.isArray(tokens)) throw new InvalidArgTypeError('tokens', 'an array', tokens);
  if (tokens.length < 1 || tokens.length > AFSTOKEN_MAX) {
    throw new OutOfRangeError('tokens.length', `1 to ${AFSTOKEN_MAX} tokens`, tokens.length);
  }
  return xdrPayload(cell, tokens.map((token, i) => encodeXdrToken(token, `tokens[${i}]`)));
}

/** One token of an XDR payload, checked (errors name `argument`). */
export function encodeXdrToken(token: unknown, argument: string): Buffer {
  const type = checkObject(token, argument).type;
  if (type === 'rxkad') return rxkadXdrBody(token, argument);
  if (type === 'yfs-rxgk') return checkRxgkToken(token, argument);
  throw new InvalidArgValueError(`${argument}.type`, "must be 'rxkad' or 'yfs-rxgk'", type);
}

/** The XDR payload of a cell (already checked) and its encoded tokens. */
export function xdrPayload(cell: string, bodies: readonly Buffer[]): Buffer {
  const xdr = new Xdr().u32(0).opaque(Buffer.from(cell, 'latin1')).u32(bodies.length);
  for (const body of bodies) xdr.opaque(body);
  const payload = xdr.bytes();
  if (payload.length > AFSTOKEN_LENGTH_MAX) {
    throw new OutOfRangeError('tokens', `at most ${AFSTOKEN_LENGTH_MAX} bytes of XDR in all`, payload.length);
  }
  return payload;
}

export function checkEnctype(value: unknown, argument: string): { name: string; keyLength: number } {
  checkUint(value, argument);
  const enctype = RXGK_ENCTYPES.get(value as number);
  if (!enctype) {
    throw new InvalidArgValueError(argument, `must be a Kerberos 5 enctype Linux's RxGK knows (${[...RXGK_ENCTYPES.keys()].join(', ')})`, value);
  }
  return enctype;
}

/** An "rxrpc_s" key: its description and payload. */
export interface ServerKeyPayload {
  description: string;
  payload: Buffer;
}

/** The rxkad server key of a service: "<service>:2" and the 8-byte DES key. */
export function rxkadServerKey(service: number, secret: Uint8Array, argument = 'secret'): ServerKeyPayload {
  const s = checkUint(service, 'service', 0xffff, 1);
  return { description: `${s}:${RXRPC_SECURITY_RXKAD}`, payload: Buffer.from(checkDesKey(secret, argument)) };
}

/** The YFS-RxGK server key of a service: "<service>:6:<kvno>:<enctype>" and a key of the enctype's length. */
export function yfsRxgkServerKey(service: number, kvno: number, enctype: number, secret: Uint8Array,
  argument = 'secret'): ServerKeyPayload {
  const s = checkUint(service, 'service', 0xffff, 1);
  const k = checkUint(kvno, 'kvno');
  const e = checkEnctype(enctype, 'enctype');
  checkBytes(secret, argument, e.keyLength, e.keyLength);
  return { description: `${s}:${RXRPC_SECURITY_YFS_RXGK}:${k}:${enctype}`, payload: Buffer.from(secret) };
}
