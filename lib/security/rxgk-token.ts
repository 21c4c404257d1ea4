/**
 * YFS-RxGK tokens made from a service's key, without a KDC or GSS
 * negotiation: what a YFS-RxGK server decrypts from a RESPONSE, as Linux
 * reads it (net/rxrpc rxgk_app.c: rxgk_extract_token, rxgk_yfs_decode_ticket).
 * Anyone holding the service key can mint any token: it is the key of the cell.
 *
 *   RXGK_TokenContainer { int32 kvno; int32 enctype; opaque encrypted_token<>; }
 *   RXGK_Token { { uint32 enctype; opaque key<>; } K0; uint32 level;
 *                int64 starttime; int32 lifetime; int32 bytelife;
 *                int64 expirationtime; RXGK_AuthName identities<>; }
 *
 * encrypted_token is the XDR of RXGK_Token sealed with the service key under
 * usage RXGK_SERVER_ENC_TOKEN (krb5.ts); times are in 100 ns units since 1970.
 * The client's token carries K0 (the session key) beside the container, from
 * which both ends derive the connection's transport keys.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgTypeError, MalformedError, OutOfRangeError } from '../errors';
import { krb5Decrypt, krb5Encrypt, RXGK_SERVER_ENC_TOKEN } from './krb5';
import {
  checkBytes, checkEnctype, checkLevel, checkTime, checkUint, HUNDRED_NS_PER_S, SECURITY_LEVELS, SecurityLevel, Time,
  YfsRxgkToken,
} from './rxkad';


export interface RxgkMintOptions {
  /** The service's YFS-RxGK key (the secret of its "<service>:6:<kvno>:<enctype>" server key). */
  serverKey: Uint8Array;
  /** That key's version number and enctype (19 or 20: the RFC 8009 enctypes). */
  kvno: number;
  enctype: number;
  /** The level the connection runs at. Default 'encrypt'. */
  level?: SecurityLevel;
  /** Validity. Default: from now for 10 hours. */
  begin?: Time;
  end?: Time;
  /** Seconds a connection key may be used before a rekey (0, the default: no limit). */
  lifetime?: number;
  /** Bytes a connection key may protect, as a power of two (0, the default: no limit). */
  bytelife?: number;
  /** The session key K0 and its enctype. Default: a random key of the service key's enctype. */
  sessionKey?: Uint8Array;
  sessionEnctype?: number;
}

/** What a sealed token holds. */
export interface RxgkTokenFields {
  sessionEnctype: number;
  sessionKey: Buffer;
  level: number;
  /** Seconds since the epoch. */
  begin: number;
  end: number;
  lifetime: number;
  bytelife: number;
  identities: number;
}

/** A minted client token: times in seconds, key and ticket as Buffers. */
export type MintedRxgkToken = YfsRxgkToken & { type: 'yfs-rxgk'; begin: number; end: number; key: Buffer; ticket: Buffer };

/** A client token ('yfs-rxgk', for createTokenKey) whose ticket is a token container sealed with the service key. */
export function mintRxgkToken(options: RxgkMintOptions): MintedRxgkToken {
  if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'an object', options);
  const kvno = checkUint(options.kvno, 'kvno');
  const enctype = checkEnctype(options.enctype, 'enctype');
  const serverKey = checkBytes(options.serverKey, 'serverKey', enctype.keyLength, enctype.keyLength);
  const sessionEnctype = options.sessionEnctype ?? options.enctype;
  const session = checkEnctype(sessionEnctype, 'sessionEnctype');
  const sessionKey = options.sessionKey === undefined
    ? randomBytes(session.keyLength)
    : Buffer.from(checkBytes(options.sessionKey, 'sessionKey', session.keyLength, session.keyLength));
  const level = options.level ?? 'encrypt';
  checkLevel(level, 'level');
  const begin = options.begin === undefined ? Math.floor(Date.now() / 1000) : checkTime(options.begin, 'begin');
  const end = options.end === undefined ? begin + 36000 : checkTime(options.end, 'end');
  if (end <= begin) throw new OutOfRangeError('end', `after begin (${begin})`, options.end);
  const lifetime = checkUint(options.lifetime ?? 0, 'lifetime', 0x7fffffff);
  const bytelife = checkUint(options.bytelife ?? 0, 'bytelife', 63);

  const token = Buffer.alloc(4 + 4 + pad(sessionKey.length) + 4 + 8 + 4 + 4 + 8 + 4);
  let o = token.writeUInt32BE(sessionEnctype, 0);
  o = token.writeUInt32BE(sessionKey.length, o);
  sessionKey.copy(token, o);
  o += pad(sessionKey.length);
  o = token.writeUInt32BE(SECURITY_LEVELS[level], o);
  o = token.writeBigInt64BE(BigInt(begin) * HUNDRED_NS_PER_S, o);
  o = token.writeInt32BE(lifetime, o);
  o = token.writeInt32BE(bytelife, o);
  o = token.writeBigInt64BE(BigInt(end) * HUNDRED_NS_PER_S, o);
  token.writeUInt32BE(0, o); // no identities
  const sealed = krb5Encrypt(options.enctype, serverKey, RXGK_SERVER_ENC_TOKEN, token);
  const container = Buffer.alloc(12 + pad(sealed.length));
  container.writeUInt32BE(kvno, 0);
  container.writeUInt32BE(options.enctype, 4);
  container.writeUInt32BE(sealed.length, 8);
  sealed.copy(container, 12);
  return {
    type: 'yfs-rxgk', begin, end, level, lifetime, bytelife, enctype: sessionEnctype, key: sessionKey, ticket: container,
  };
}

/** Opens a token container with the service key (the checks a server makes before it looks inside). */
export function openRxgkToken(serverKey: Uint8Array, container: Uint8Array): { kvno: number; enctype: number } & RxgkTokenFields {
  const c = Buffer.from(container);
  if (c.length < 12) throw new MalformedError('RXGK_TokenContainer', `${c.length} bytes (need at least 12)`);
  const kvno = c.readUInt32BE(0);
  const enctype = c.readUInt32BE(4);
  const length = c.readUInt32BE(8);
  if (12 + pad(length) > c.length) throw new MalformedError('RXGK_TokenContainer', `token of ${length} bytes in ${c.length - 12}`, 8);
  const t = krb5Decrypt(enctype, serverKey, RXGK_SERVER_ENC_TOKEN, c.subarray(12, 12 + length));
  const need = (n: number, at: number) => {
    if (at + n > t.length) throw new MalformedError('RXGK_Token', `ends after ${t.length} bytes`, at);
  };
  need(8, 0);
  const sessionEnctype = t.readUInt32BE(0);
  const klen = t.readUInt32BE(4);
  need(pad(klen) + 32, 8);
  const sessionKey = Buffer.from(t.subarray(8, 8 + klen));
  let o = 8 + pad(klen);
  const level = t.readUInt32BE(o);
  const begin = Number(t.readBigInt64BE(o + 4) / HUNDRED_NS_PER_S);
  const lifetime = t.readInt32BE(o + 12);
  const bytelife = t.readInt32BE(o + 16);
  const end = Number(t.readBigInt64BE(o + 20) / HUNDRED_NS_PER_S);
  o += 28;
  return { kvno, enctype, sessionEnctype, sessionKey, level, begin, end, lifetime, bytelife, identities: t.readUInt32BE(o) };
}

function pad(n: number): number {
  return (n + 3) & ~3;
}
