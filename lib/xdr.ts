/**
 * XDR (RFC 4506) for Rx RPC bodies: big-endian, 4-byte aligned. The reader is
 * bounds-checked: a short or malformed body throws MalformedError, never
 * yields garbage.
 */
import { checkBytes, InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError } from './errors';

const pad = (n: number) => (4 - (n % 4)) % 4;

function checkInt(argument: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(argument, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

export class XdrWriter {
  private chunks: Buffer[] = [];
  private length = 0;

  private push(b: Buffer): this {
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }

  u32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(checkInt('u32', value, 0, 0xffffffff));
    return this.push(b);
  }

  i32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(checkInt('i32', value, -0x80000000, 0x7fffffff));
    return this.push(b);
  }

  u64(value: bigint | number): this {
    if (typeof value !== 'number' && typeof value !== 'bigint') throw new InvalidArgTypeError('u64', 'of type bigint or number', value);
    const v = BigInt(typeof value === 'number' ? checkInt('u64', value, 0, Number.MAX_SAFE_INTEGER) : value);
    if (v < 0n || v >= 1n << 64n) throw new OutOfRangeError('u64', 'from 0 to 2^64-1', value);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return this.push(b);
  }

  /** A signed 64-bit integer (hyper, afs_int64). */
  i64(value: bigint | number): this {
    if (typeof value !== 'number' && typeof value !== 'bigint') throw new InvalidArgTypeError('i64', 'of type bigint or number', value);
    const v = BigInt(typeof value === 'number' ? checkInt('i64', value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) : value);
    if (v < -(1n << 63n) || v >= 1n << 63n) throw new OutOfRangeError('i64', 'from -2^63 to 2^63-1', value);
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    return this.push(b);
  }

  bool(value: boolean): this {
    if (typeof value !== 'boolean') throw new InvalidArgTypeError('bool', 'of type boolean', value);
    return this.u32(value ? 1 : 0);
  }

  /** Fixed-length opaque: exactly `length` bytes, padded. */
  fixed(bytes: Uint8Array, length?: number): this {
    checkBytes(bytes, 'opaque');
    length = length === undefined ? bytes.length : checkInt('length', length, 0, 0xffffffff);
    if (bytes.length !== length) throw new OutOfRangeError('opaque', `exactly ${length} bytes long`, bytes.length);
    this.push(Buffer.from(bytes));
    return this.push(Buffer.alloc(pad(length)));
  }

  /** Variable-length opaque: a u32 length, the bytes, padding. */
  opaque(bytes: Uint8Array, max = 0xffffffff): this {
    checkBytes(bytes, 'opaque');
    checkInt('max', max, 0, 0xffffffff);
    if (bytes.length > max) throw new OutOfRangeError('opaque length', `at most ${max}`, bytes.length);
    this.u32(bytes.length);
    return this.fixed(bytes);
  }

  /** A string as variable-length opaque (UTF-8). */
  string(value: string, max = 0xffffffff): this {
    if (typeof value !== 'string') throw new InvalidArgTypeError('string', 'of type string', value);
    return this.opaque(Buffer.from(value, 'utf8'), max);
  }

  /** A fixed-size char array as AFS declares it (e.g. char name[65]): NUL-padded, no length word. */
  chars(value: string, size: number): this {
    if (typeof value !== 'string') throw new InvalidArgTypeError('string', 'of type string', value);
    checkInt('size', size, 1, 0x3fffffff);
    // A NUL would end the string on the other side: refuse it rather than have it cut short.
    if (value.includes('\0')) throw new InvalidArgValueError('string', 'must not contain NUL characters', value);
    const b = Buffer.from(value, 'utf8');
    if (b.length >= size) throw new OutOfRangeError('string', `shorter than ${size} bytes`, value);
    // Each char travels as a 4-byte XDR int, as rxgen encodes char arrays.
    const out = Buffer.alloc(size * 4);
    for (let i = 0; i < b.length; i++) out.writeInt32BE(b[i] << 24 >> 24, i * 4);
    return this.push(out);
  }

  /** A counted array: a u32 count, then each item. */
  array<T>(items: readonly T[], each: (w: this, item: T) => void, max = 0xffffffff): this {
    if (!Array.isArray(items)) throw new InvalidArgTypeError('array', 'an array', items);
    if (typeof each !== 'function') throw new InvalidArgTypeError('each', 'a function', each);
    checkInt('max', max, 0, 0xffffffff);
    if (items.length > max) throw new OutOfRangeError('array length', `at most ${max}`, items.length);
    this.u32(items.length);
    for (const item of items) each(this, item);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

export class XdrReader {
  private offset = 0;

  private readonly buf: Buffer;

  constructor(bytes: Uint8Array) {
    checkBytes(bytes, 'bytes');
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private take(n: number, what: string): number {
    if (n > this.remaining) {
      throw new MalformedError('XDR', `${what} needs ${n} bytes, ${this.remaining} left`, this.offset);
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  u32(): number {
    return this.buf.readUInt32BE(this.take(4, 'u32'));
  }

  i32(): number {
    return this.buf.readInt32BE(this.take(4, 'i32'));
  }

  u64(): bigint {
    return this.buf.readBigUInt64BE(this.take(8, 'u64'));
  }

  /** A signed 64-bit integer (hyper, afs_int64). */
  i64(): bigint {
    return this.buf.readBigInt64BE(this.take(8, 'i64'));
  }

  bool(): boolean {
    const at = this.offset;
    const v = this.u32();
    if (v > 1) throw new MalformedError('XDR', `bool is ${v}`, at);
    return v === 1;
  }

  fixed(length: number): Buffer {
    checkInt('length', length, 0, 0xffffffff);
    const at = this.take(length + pad(length), `opaque[${length}]`);
    return Buffer.from(this.buf.subarray(at, at + length));
  }

  opaque(max = 0xffffffff): Buffer {
    checkInt('max', max, 0, 0xffffffff);
    const at = this.offset;
    const length = this.u32();
    if (length > max) throw new MalformedError('XDR', `opaque length ${length} exceeds ${max}`, at);
    return this.fixed(length);
  }

  string(max = 0xffffffff): string {
    return this.opaque(max).toString('utf8');
  }

  /** A fixed-size char array as rxgen encodes it: one XDR int per char, NUL-terminated. */
  chars(size: number): string {
    checkInt('size', size, 1, 0x3fffffff);
    const at = this.take(size * 4, `char[${size}]`);
    const bytes: number[] = [];
    for (let i = 0; i < size; i++) {
      const c = this.buf.readInt32BE(at + i * 4) & 0xff;
      if (c === 0) break;
      bytes.push(c);
    }
    return Buffer.from(bytes).toString('utf8');
  }

  /** A counted array; `max` bounds the count before anything is allocated. */
  array<T>(each: (r: this) => T, max = 0xffffffff): T[] {
    if (typeof each !== 'function') throw new InvalidArgTypeError('each', 'a function', each);
    checkInt('max', max, 0, 0xffffffff);
    const at = this.offset;
    const count = this.u32();
    if (count > max) throw new MalformedError('XDR', `array count ${count} exceeds ${max}`, at);
    // Each item takes at least 4 bytes: a count that cannot fit is malformed.
    if (count > this.remaining / 4) throw new MalformedError('XDR', `array count ${count} exceeds the ${this.remaining} bytes left`, at);
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(each(this));
    return out;
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw new MalformedError('XDR', `${this.remaining} unread bytes at the end`, this.offset);
  }
}
