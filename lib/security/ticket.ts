/**
 * rxkad tokens made from a service's key, without a KDC: the ticket a
 * Kerberos 4 server (or OpenAFS's -localauth, from the cell's KeyFile) would
 * issue, sealed with DES-PCBC under the service key, which is also the IV.
 * Anyone holding the key can mint any identity: it is the key of the cell.
 *
 * Plaintext, as the kernel's rxkad_decrypt_ticket() and OpenAFS's
 * decode_athena_ticket() read it: u8 flags (bit 0: little-endian times),
 * name\0, instance\0, realm\0 (each at most 39 printable characters),
 * u8 address[4], u8 sessionKey[8], u8 life (5-minute units), u32 issue time,
 * service\0, serviceInstance\0, zero padding to a multiple of 8 (OpenAFS
 * refuses any other length).
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgTypeError, InvalidArgValueError } from '../errors';
import { desPcbcDecrypt, desPcbcEncrypt, withOddParity } from './des';
import { checkDesKey, checkUint, isWeakDesKey, RxkadToken } from './rxkad';

export interface TicketFields {
  /** The service's DES key: seals the ticket. */
  serverKey: Uint8Array;
  /** The session key the ticket carries (the token holds it too). */
  sessionKey: Uint8Array;
  /** The principal. Default 'user'. */
  name?: string;
  instance?: string;
  /** Empty (the default) means the server's own realm. */
  realm?: string;
  /** IPv4 address the ticket was issued to; neither Linux nor OpenAFS checks it. Default 0.0.0.0. */
  address?: readonly number[];
  /** Lifetime in 5-minute units, 1 to 127. Default 96 (8 hours). */
  life?: number;
  /** Issue time, seconds since the epoch. Default now. */
  issue?: number;
  /** Default 'afs'. */
  service?: string;
  serviceInstance?: string;
  /** Flag bit 0: times in little-endian order. */
  littleEndian?: boolean;
}

function cstring(value: unknown, argument: string): Buffer {
  if (typeof value !== 'string') throw new InvalidArgTypeError(argument, 'of type string', value);
  // The kernel takes at most 40 bytes with the NUL (ANAME_SZ and friends), printable.
  if (!/^[\x20-\x7e]{0,39}$/.test(value)) {
    throw new InvalidArgValueError(argument, 'must be at most 39 printable ASCII characters', value);
  }
  return Buffer.from(`${value}\0`, 'latin1');
}

/** The plaintext of a ticket, padded. */
export function ticketPlaintext(f: TicketFields): Buffer {
  const life = checkUint(f.life ?? 96, 'life', 127, 1);
  const issue = checkUint(f.issue ?? Math.floor(Date.now() / 1000), 'issue');
  const address = f.address ?? [0, 0, 0, 0];
  if (!Array.isArray(address) || address.length !== 4) throw new InvalidArgTypeError('address', 'an array of 4 bytes', address);
  address.forEach((b, i) => checkUint(b, `address[${i}]`, 255));
  const stamp = Buffer.alloc(4);
  if (f.littleEndian) stamp.writeUInt32LE(issue);
  else stamp.writeUInt32BE(issue);
  const plain = Buffer.concat([
    Buffer.from([f.littleEndian ? 1 : 0]),
    cstring(f.name ?? 'user', 'name'),
    cstring(f.instance ?? '', 'instance'),
    cstring(f.realm ?? '', 'realm'),
    Buffer.from(address),
    Buffer.from(checkDesKey(f.sessionKey, 'sessionKey')),
    Buffer.from([life]),
    stamp,
    cstring(f.service ?? 'afs', 'service'),
    cstring(f.serviceInstance ?? '', 'serviceInstance'),
  ]);
  return Buffer.concat([plain, Buffer.alloc((8 - (plain.length % 8)) % 8)]);
}

/** A sealed ticket. */
export function sealTicket(fields: TicketFields): Buffer {
  const key = checkDesKey(fields.serverKey, 'serverKey');
  return desPcbcEncrypt(key, key, ticketPlaintext(fields));
}

/** The plaintext of a sealed ticket (padding included). */
export function openTicket(serverKey: Uint8Array, ticket: Uint8Array): Buffer {
  const key = checkDesKey(serverKey, 'serverKey');
  return desPcbcDecrypt(key, key, ticket);
}

/** A random DES key with odd parity that is neither weak nor semi-weak (a session key). */
export function randomDesKey(): Buffer {
  for (;;) {
    const key = withOddParity(randomBytes(8));
    if (!isWeakDesKey(key)) return key;
  }
}

export interface MintOptions extends Omit<TicketFields, 'sessionKey'> {
  /** The key version number the service key has (OpenAFS looks the key up by it; Linux takes any below 256). */
  kvno: number;
  /** The session key. Default: a random one. */
  sessionKey?: Uint8Array;
  /** When the token expires, seconds since the epoch. Default: when the ticket does. */
  expiry?: number;
}

/** A token (ticket, session key, kvno, expiry) for a ticket minted with the service key. */
export function mintRxkadToken(options: MintOptions): RxkadToken {
  const sessionKey = options.sessionKey ?? randomDesKey();
  const issue = options.issue ?? Math.floor(Date.now() / 1000);
  const life = options.life ?? 96;
  const ticket = sealTicket({ ...options, sessionKey, issue, life });
  return {
    kvno: checkUint(options.kvno, 'kvno'),
    sessionKey,
    ticket,
    expiry: options.expiry ?? issue + life * 300,
  };
}
