/**
 * Kerberos 5 encryption as RFC 8009 defines it for aes128-cts-hmac-sha256-128
 * (enctype 19) and aes256-cts-hmac-sha384-192 (enctype 20), the two enctypes
 * of Linux's crypto/krb5 that Node's OpenSSL has every part of: AES-CBC with
 * ciphertext stealing (CBC-CS3, as RFC 3962), HMAC-SHA-256/384 and the
 * KDF-HMAC-SHA2 key derivation. Enough to seal and open the YFS-RxGK token a
 * server decrypts with its key (usage RXGK_SERVER_ENC_TOKEN).
 *
 * ciphertext = AES-CTS(Ke, IV 0, confounder | plaintext) | HMAC(Ki, IV 0 | that)
 * truncated; Ke = KDF(key, usage | 0xAA), Ki = KDF(key, usage | 0x55).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgValueError, MalformedError } from '../errors';
import { checkBytes, checkEnctype, checkUint } from './rxkad';

interface Rfc8009 {
  cipher: 'aes-128-cbc' | 'aes-256-cbc';
  hash: 'sha256' | 'sha384';
  keyLength: number;
  /** Length of Ki and of the checksum. */
  macLength: number;
}

const RFC8009: ReadonlyMap<number, Rfc8009> = new Map([
  [19, { cipher: 'aes-128-cbc', hash: 'sha256', keyLength: 16, macLength: 16 }],
  [20, { cipher: 'aes-256-cbc', hash: 'sha384', keyLength: 32, macLength: 24 }],
] as const);

const BLOCK = 16;
const ZERO_IV = Buffer.alloc(BLOCK);

/** The Kerberos 5 key usage RxGK seals its server tokens with (rxgk_kdf.c). */
export const RXGK_SERVER_ENC_TOKEN = 1036;

function profile(enctype: number, argument = 'enctype'): Rfc8009 {
  checkEnctype(enctype, argument);
  const p = RFC8009.get(enctype);
  if (!p) {
    throw new InvalidArgValueError(argument, `must be ${[...RFC8009.keys()].join(' or ')} (the RFC 8009 enctypes; this library does not implement the others)`, enctype);
  }
  return p;
}

/** KDF-HMAC-SHA2 with an empty context: the first `bits` bits of HMAC(key, 1 | label | 0 | bits). */
function kdf(p: Rfc8009, key: Uint8Array, label: Uint8Array, bits: number): Buffer {
  const counter = Buffer.from([0, 0, 0, 1]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bits);
  return createHmac(p.hash, key).update(counter).update(label).update(Buffer.from([0])).update(length).digest()
    .subarray(0, bits / 8);
}

/** The encryption and integrity keys RFC 8009 derives from a base key for one usage. */
export function deriveKeys(enctype: number, key: Uint8Array, usage: number): { ke: Buffer; ki: Buffer } {
  const p = profile(enctype);
  checkBytes(key, 'key', p.keyLength, p.keyLength);
  const label = (suffix: number) => {
    const b = Buffer.alloc(5);
    b.writeUInt32BE(checkUint(usage, 'usage'));
    b[4] = suffix;
    return b;
  };
  return { ke: kdf(p, key, label(0xaa), p.keyLength * 8), ki: kdf(p, key, label(0x55), p.macLength * 8) };
}

function cbc(p: Rfc8009, key: Uint8Array, data: Buffer, encrypt: boolean): Buffer {
  const c = encrypt ? createCipheriv(p.cipher, key, ZERO_IV) : createDecipheriv(p.cipher, key, ZERO_IV);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** AES-CBC with ciphertext stealing, the last two blocks swapped (CBC-CS3); at least one block. */
function ctsEncrypt(p: Rfc8009, key: Uint8Array, plain: Buffer): Buffer {
  if (plain.length <= BLOCK) return cbc(p, key, plain, true);
  const tail = plain.length % BLOCK || BLOCK;
  const padded = Buffer.concat([plain, Buffer.alloc(BLOCK - tail)]);
  const c = cbc(p, key, padded, true);
  const n = c.length;
  return Buffer.concat([c.subarray(0, n - 2 * BLOCK), c.subarray(n - BLOCK), c.subarray(n - 2 * BLOCK, n - 2 * BLOCK + tail)]);
}

function ctsDecrypt(p: Rfc8009, key: Uint8Array, data: Buffer): Buffer {
  if (data.length <= BLOCK) return cbc(p, key, data, false);
  const tail = data.length % BLOCK || BLOCK;
  const head = data.length - tail - BLOCK;
  const last = data.subarray(head, head + BLOCK);
  const stolen = data.subarray(head + BLOCK);
  // The last full block, decrypted alone, is the next-to-last ciphertext block
  // (the stolen bytes and the rest) XORed with the zero-padded last plaintext.
  const d = cbc(p, key, Buffer.from(last), false);
  const previous = Buffer.concat([stolen, d.subarray(tail)]);
  const plain = cbc(p, key, Buffer.concat([data.subarray(0, head), previous, last]), false);
  return plain.subarray(0, data.length);
}

/** Encrypts `plain` for `usage` with a random confounder (or the one given, for test vectors). */
export function krb5Encrypt(enctype: number, key: Uint8Array, usage: number, plain: Uint8Array,
  confounder: Uint8Array = randomBytes(BLOCK)): Buffer {
  const p = profile(enctype);
  const { ke, ki } = deriveKeys(enctype, key, usage);
  checkBytes(confounder, 'confounder', BLOCK, BLOCK);
  const c = ctsEncrypt(p, ke, Buffer.concat([confounder, plain]));
  const h = createHmac(p.hash, ki).update(ZERO_IV).update(c).digest().subarray(0, p.macLength);
  return Buffer.concat([c, h]);
}

/** Decrypts what krb5Encrypt made; a wrong key, usage or a changed byte fails the checksum (MalformedError). */
export function krb5Decrypt(enctype: number, key: Uint8Array, usage: number, data: Uint8Array): Buffer {
  const p = profile(enctype);
  const { ke, ki } = deriveKeys(enctype, key, usage);
  const bytes = Buffer.from(data);
  if (bytes.length < BLOCK + p.macLength) {
    throw new MalformedError('Kerberos 5 ciphertext', `${bytes.length} bytes (need at least ${BLOCK + p.macLength})`);
  }
  const c = bytes.subarray(0, bytes.length - p.macLength);
  const h = createHmac(p.hash, ki).update(ZERO_IV).update(c).digest().subarray(0, p.macLength);
  if (!timingSafeEqual(h, bytes.subarray(c.length))) {
    throw new MalformedError('Kerberos 5 ciphertext', 'checksum mismatch (wrong key or usage, or altered)');
  }
  return ctsDecrypt(p, ke, c).subarray(BLOCK);
}
