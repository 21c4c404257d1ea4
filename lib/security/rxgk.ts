/**
 * The RxGK challenge/response control messages (Linux about 6.16 on; net/rxrpc
 * oob.c, recvmsg.c, rxgk.c; include/uapi/linux/rxrpc.h), as pure codecs.
 *
 * A client socket with RXRPC_MANAGE_RESPONSE set gets the CHALLENGE packets
 * of security classes that hand them to user space (only RxGK does; rxkad's
 * are always answered by the kernel) as ordinary recvmsg messages without a
 * call: RXRPC_OOB_ID (u64) and RXRPC_CHALLENGED (struct rxrpc_challenge: u16
 * service ID, u8 security index, u8 pad; RxGK adds a u32 enctype), no data
 * and no msg_name. The answer is a sendmsg with MSG_OOB carrying RXRPC_OOB_ID
 * and RXRPC_RESPOND, optionally RXRPC_RESP_RXGK_APPDATA (bytes for the
 * authenticator) or RXRPC_ABORT (refuse, aborting the connection); never a
 * USER_CALL_ID (EINVAL). RXRPC_RESPONDED (18) is defined for servers but no
 * kernel code emits it yet.
 *
 * Measured: every stock kernel of the matrix (6.1, 6.12, 7.3.4) refuses
 * sendmsg with MSG_OOB with errno 95 (EOPNOTSUPP; ENOTSUP to Node), and
 * Debian's 7.3 has no RxGK (CONFIG_RXGK unset), so no challenge reaches user
 * space there. The fixed 7.3 module (kernel/) has RxGK and the three patches
 * this interface needs; there challenges are delivered, answered and refused.
 */
import { endianness } from 'node:os';
import {
  RXRPC_ABORT, RXRPC_OOB_ID, RXRPC_RESP_RXGK_APPDATA, RXRPC_RESPOND, SOL_RXRPC,
} from '../constants';
import { InvalidArgTypeError, MalformedError, OutOfRangeError } from '../errors';
import { RXRPC_SECURITY_YFS_RXGK } from './rxkad';

const LE = endianness() === 'LE';
const CMSG_HDR = 16;
const align = (n: number) => (n + 7) & ~7;

/** What RXRPC_CHALLENGED says about a challenge. */
export interface Challenge {
  /** The connection's service ID (after any upgrade). */
  service: number;
  securityIndex: number;
  /** RxGK: the Kerberos 5 encryption type of the connection. */
  enctype?: number;
  /** Bytes a security class appended that are not decoded here. */
  extra: Buffer;
}

/** Decodes the data of an RXRPC_CHALLENGED control message (host byte order). */
export function decodeChallenge(bytes: Uint8Array): Challenge {
  if (bytes.length < 4) throw new MalformedError('RXRPC_CHALLENGED', `${bytes.length} bytes (need at least 4)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const service = view.getUint16(0, LE);
  const securityIndex = bytes[2];
  let rest = 4;
  let enctype: number | undefined;
  if (securityIndex === RXRPC_SECURITY_YFS_RXGK && bytes.length >= 8) {
    enctype = view.getUint32(4, LE);
    rest = 8;
  }
  return { service, securityIndex, enctype, extra: Buffer.from(bytes.subarray(rest)) };
}

/** Encodes RXRPC_CHALLENGED data (what the kernel would put there; for tests and fakes). */
export function encodeChallenge(c: { service: number; securityIndex: number; enctype?: number }): Buffer {
  const b = Buffer.alloc(c.enctype === undefined ? 4 : 8);
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  view.setUint16(0, c.service, LE);
  b[2] = c.securityIndex;
  if (c.enctype !== undefined) view.setUint32(4, c.enctype, LE);
  return b;
}

/** The control messages of an answer to a challenge (sendmsg with MSG_OOB). */
export interface OobControl {
  /** The RXRPC_OOB_ID the challenge came with. */
  oobId: bigint;
  /** RXRPC_RESP_RXGK_APPDATA: bytes for the RxGK authenticator's appdata. */
  appData?: Uint8Array;
  /** RXRPC_ABORT: refuse the challenge, aborting the connection with this code. */
  abort?: number;
}

/** Encodes OOB_ID + RESPOND (+ APPDATA or ABORT) for one sendmsg(MSG_OOB). */
export function encodeOobControl(c: OobControl): Buffer {
  if (typeof c !== 'object' || c === null) throw new InvalidArgTypeError('control', 'an object', c);
  if (typeof c.oobId !== 'bigint') throw new InvalidArgTypeError('oobId', 'of type bigint', c.oobId);
  if (c.oobId < 0n || c.oobId >= 1n << 64n) throw new OutOfRangeError('oobId', 'a u64', c.oobId);
  const parts: Array<[number, Uint8Array]> = [[RXRPC_OOB_ID, Buffer.alloc(8)], [RXRPC_RESPOND, Buffer.alloc(0)]];
  new DataView(parts[0][1].buffer, parts[0][1].byteOffset, 8).setBigUint64(0, c.oobId, LE);
  if (c.abort !== undefined) {
    if (typeof c.abort !== 'number') throw new InvalidArgTypeError('abort', 'of type number', c.abort);
    if (!Number.isInteger(c.abort) || c.abort === 0 || c.abort < -0x80000000 || c.abort > 0xffffffff) {
      throw new OutOfRangeError('abort', 'a non-zero 32-bit integer (signed or unsigned)', c.abort);
    }
    const code = Buffer.alloc(4);
    new DataView(code.buffer, code.byteOffset, 4).setInt32(0, c.abort | 0, LE);
    parts.push([RXRPC_ABORT, code]);
  }
  if (c.appData !== undefined) {
    if (!(c.appData instanceof Uint8Array)) throw new InvalidArgTypeError('appData', 'a Uint8Array', c.appData);
    if (c.abort !== undefined) throw new OutOfRangeError('appData', 'absent when the challenge is refused', c.appData.length);
    parts.push([RXRPC_RESP_RXGK_APPDATA, c.appData]);
  }
  const buf = Buffer.alloc(parts.reduce((n, [, d]) => n + align(CMSG_HDR + d.length), 0));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let off = 0;
  for (const [type, data] of parts) {
    view.setBigUint64(off, BigInt(CMSG_HDR + data.length), LE);
    view.setInt32(off + 8, SOL_RXRPC, LE);
    view.setInt32(off + 12, type, LE);
    buf.set(data, off + CMSG_HDR);
    off += align(CMSG_HDR + data.length);
  }
  return buf;
}
