/**
 * DES (FIPS 46-3) and its PCBC mode, for sealing rxkad tickets (ticket.ts).
 * Node's OpenSSL 3 has DES only in its legacy provider, which is off unless
 * node runs with --openssl-legacy-provider, so this small implementation is
 * used instead. It works on bit arrays: slow (about 50 us a block), but a
 * ticket is a few blocks, and nothing else here uses DES: the kernel does
 * the packet cryptography. Checked against FIPS 81's known answers and
 * OpenSSL's legacy provider (test/unit/rxkad-des.test.ts).
 */

// Permutation tables, 1-based bit numbers as printed in FIPS 46-3.
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
const FP = [
  40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
  36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27, 34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];
const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
  16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
const P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25];
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const S = [
  [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
    4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
  [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
    0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
  [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
    13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
  [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
    10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
  [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
    4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
  [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
    9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
  [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
    1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
  [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
    7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
];

type Bits = number[];

function toBits(bytes: Uint8Array): Bits {
  const bits: Bits = [];
  for (const b of bytes) for (let i = 7; i >= 0; i--) bits.push((b >> i) & 1);
  return bits;
}

function toBytes(bits: Bits): Buffer {
  const out = Buffer.alloc(bits.length / 8);
  bits.forEach((bit, i) => (out[i >> 3] |= bit << (7 - (i & 7))));
  return out;
}

const permute = (bits: Bits, table: number[]): Bits => table.map((n) => bits[n - 1]);
const rotate = (bits: Bits, n: number): Bits => [...bits.slice(n), ...bits.slice(0, n)];

/** The 16 round keys of an 8-byte key (parity bits ignored, as DES does). */
export function keySchedule(key: Uint8Array): Bits[] {
  if (key.length !== 8) throw new RangeError(`a DES key is 8 bytes, not ${key.length}`);
  const cd = permute(toBits(key), PC1);
  let c = cd.slice(0, 28);
  let d = cd.slice(28);
  return SHIFTS.map((shift) => {
    c = rotate(c, shift);
    d = rotate(d, shift);
    return permute([...c, ...d], PC2);
  });
}

function feistel(r: Bits, k: Bits): Bits {
  const x = permute(r, E).map((bit, i) => bit ^ k[i]);
  const out: Bits = [];
  for (let s = 0; s < 8; s++) {
    const b = x.slice(6 * s, 6 * s + 6);
    const row = (b[0] << 1) | b[5];
    const col = (b[1] << 3) | (b[2] << 2) | (b[3] << 1) | b[4];
    const v = S[s][row * 16 + col];
    for (let i = 3; i >= 0; i--) out.push((v >> i) & 1);
  }
  return permute(out, P);
}

/** One 8-byte block through DES with a key schedule (decrypting: the schedule reversed). */
function block(input: Uint8Array, schedule: Bits[], decrypt: boolean): Buffer {
  const bits = permute(toBits(input), IP);
  let l = bits.slice(0, 32);
  let r = bits.slice(32);
  for (let round = 0; round < 16; round++) {
    const k = schedule[decrypt ? 15 - round : round];
    const f = feistel(r, k);
    [l, r] = [r, l.map((bit, i) => bit ^ f[i])];
  }
  return toBytes(permute([...r, ...l], FP));
}

export function desEncryptBlock(key: Uint8Array, input: Uint8Array): Buffer {
  return block(input, keySchedule(key), false);
}

export function desDecryptBlock(key: Uint8Array, input: Uint8Array): Buffer {
  return block(input, keySchedule(key), true);
}

function xor8(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(8);
  for (let i = 0; i < 8; i++) out[i] = a[i] ^ b[i];
  return out;
}

function checkBlocks(data: Uint8Array, iv: Uint8Array): void {
  if (data.length % 8 !== 0) throw new RangeError(`PCBC data must be a multiple of 8 bytes, not ${data.length}`);
  if (iv.length !== 8) throw new RangeError(`the IV is 8 bytes, not ${iv.length}`);
}

/**
 * DES in propagating CBC mode (Kerberos 4's, and rxkad's for tickets):
 * C[i] = E(P[i] ^ P[i-1] ^ C[i-1]), with P[-1] ^ C[-1] = IV.
 */
export function desPcbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  checkBlocks(data, iv);
  const schedule = keySchedule(key);
  const out = Buffer.alloc(data.length);
  let chain: Buffer = Buffer.from(iv);
  for (let i = 0; i < data.length; i += 8) {
    const p = data.subarray(i, i + 8);
    const c = block(xor8(p, chain), schedule, false);
    c.copy(out, i);
    chain = xor8(p, c);
  }
  return out;
}

export function desPcbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  checkBlocks(data, iv);
  const schedule = keySchedule(key);
  const out = Buffer.alloc(data.length);
  let chain: Buffer = Buffer.from(iv);
  for (let i = 0; i < data.length; i += 8) {
    const c = data.subarray(i, i + 8);
    const p = xor8(block(c, schedule, true), chain);
    p.copy(out, i);
    chain = xor8(p, c);
  }
  return out;
}

/** Sets each byte's low bit so that it has odd parity (DES keys as Kerberos makes them). */
export function withOddParity(key: Uint8Array): Buffer {
  return Buffer.from(Array.from(key, (b) => {
    const high = b & 0xfe;
    let ones = 0;
    for (let v = high; v; v >>= 1) ones += v & 1;
    return high | (ones % 2 === 0 ? 1 : 0);
  }));
}
