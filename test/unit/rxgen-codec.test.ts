/**
 * Generated XDR codecs: they compile under tsc --strict (and stricter), put
 * each construct on the wire as rxgen's C code does, check every bound when
 * encoding and decoding, and round-trip every value of every type.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MalformedError } from '../../lib/errors';
import { generate } from '../../lib/rxgen';
import { Model } from '../../lib/rxgen/model';
import { XdrReader, XdrWriter } from '../../lib/xdr';
import { KITCHEN, optionsFor } from './rxgen-fixtures';
import { Arbitraries, compile, Compiled, LIB, plain, ROOT, STRICT, STRICTER } from './rxgen-support';

type Codec = Record<string, (...args: never[]) => unknown>;
type Encoder = (w: XdrWriter, v: unknown, at?: string) => void;
type Decoder = (r: XdrReader) => unknown;

const WIRE = `
typedef char w_chars[5];
typedef string w_str<5>;
typedef opaque w_fixed[5];
typedef opaque w_var<5>;
typedef afs_int32 w_vec[2];
typedef afs_uint32 w_arr<3>;
typedef afs_int32 *w_opt;
typedef afs_int64 w_hyper;
typedef afs_uint64 w_uhyper;
typedef bool w_bool;
typedef char w_char;
typedef unsigned char w_uchar;
typedef short w_short;
typedef unsigned short w_ushort;
typedef float w_float;
typedef double w_double;
enum w_enum { W_A = -1, W_B };
union w_union switch (afs_int32 d) {
  case 1: afs_int32 x;
  case 2: void;
  default: string s<3>;
};
union w_strict switch (afs_uint32 d) {
  case 1: afs_int32 x;
};
struct w_pair {
  afs_int32 a;
  string b<4>;
};
typedef afsUUID w_uuid;
`;

let compiled: Compiled;
let models: Record<string, Model>;
const mods: Record<string, Codec> = {};

beforeAll(() => {
  const ks = generate(KITCHEN['/ks/ks.xg'], optionsFor(KITCHEN, '/ks/ks.xg', { importFrom: LIB }));
  const vlPath = join(ROOT, 'interfaces', 'vl.xg');
  const vl = generate(readFileSync(vlPath, 'utf8'), { fileName: vlPath, importFrom: LIB });
  const wire = generate(WIRE, { fileName: 'wire.xg', importFrom: LIB });
  models = { ks: ks.model, vl: vl.model, wire: wire.model };
  // A package without procedures, and an interface with nothing but constants.
  const bare = generate('package E_\nconst E_ONE = 1;\n', { fileName: 'bare.xg', importFrom: LIB });
  compiled = compile({
    'ks.ts': ks.files.get('ks.ts')!, 'vl.ts': vl.files.get('vl.ts')!, 'wire.ts': wire.files.get('wire.ts')!, 'bare.ts': bare.files.get('bare.ts')!,
  }, STRICTER);
  for (const name of ['ks', 'vl', 'wire']) mods[name] = compiled.load(`${name}.ts`);
}, 120000);

const enc = (mod: string, type: string, v: unknown): Buffer => {
  const w = new XdrWriter();
  (mods[mod][`encode_${type}`] as unknown as Encoder)(w, v);
  return w.toBuffer();
};
const dec = (mod: string, type: string, bytes: Buffer): unknown => {
  const r = new XdrReader(bytes);
  const v = (mods[mod][`decode_${type}`] as unknown as Decoder)(r);
  r.end();
  return v;
};
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('rxgen: generated code', () => {
  test('compiles under tsc --strict and stricter options (no unused names, unchecked index access, exact optional types), declarations too', () => {
    expect(compiled.diagnostics).toEqual([]);
    expect(readFileSync(join(compiled.dir, 'vl.d.ts'), 'utf8')).toContain('export declare function VL_GetEntryByNameU(');
  });

  test('compiles under plain tsc --strict', () => {
    const vlPath = join(ROOT, 'interfaces', 'vl.xg');
    const vl = generate(readFileSync(vlPath, 'utf8'), { fileName: vlPath, importFrom: LIB });
    expect(compile({ 'vl.ts': vl.files.get('vl.ts')! }, { ...STRICT, declaration: false }).diagnostics).toEqual([]);
  }, 60000);
});

describe('rxgen: each construct on the wire, as rxgen encodes it', () => {
  test.each([
    ['w_chars', 'ab', '00000061 00000062 00000000 00000000 00000000'], // one XDR int per char
    ['w_str', 'abc', '00000003 61626300'],
    ['w_fixed', Uint8Array.of(1, 2, 3, 4, 5), '01020304 05000000'], // padded to 4, no length
    ['w_var', Uint8Array.of(1, 2), '00000002 01020000'],
    ['w_vec', [1, -1], '00000001 ffffffff'],
    ['w_arr', [7], '00000001 00000007'],
    ['w_opt', null, '00000000'], // optional data: a bool, then the item
    ['w_opt', 5, '00000001 00000005'],
    ['w_hyper', -2n, 'ffffffff fffffffe'],
    ['w_uhyper', 2n ** 64n - 1n, 'ffffffff ffffffff'],
    ['w_bool', true, '00000001'],
    ['w_char', -1, 'ffffffff'],
    ['w_uchar', 255, '000000ff'],
    ['w_short', -2, 'fffffffe'],
    ['w_ushort', 65535, '0000ffff'],
    ['w_float', 1.5, '3fc00000'],
    ['w_double', 1.5, '3ff80000 00000000'],
    ['w_enum', -1, 'ffffffff'],
    ['w_union', { d: 1, x: 9 }, '00000001 00000009'],
    ['w_union', { d: 2 }, '00000002'],
    ['w_union', { d: 7, s: 'hi' }, '00000007 00000002 68690000'], // the default arm
    ['w_pair', { a: 1, b: 'x' }, '00000001 00000001 78000000'],
    ['w_uuid', { time_low: 1, time_mid: 2, time_hi_and_version: 3, clock_seq_hi_and_reserved: 0x80, clock_seq_low: 5, node: [0xff, 1, 2, 3, 4, 5] },
      '00000001 00000002 00000003 ffffff80 00000005 ffffffff 00000001 00000002 00000003 00000004 00000005'],
  ])('%s %p', (type, value, bytes) => {
    expect(enc('wire', type, value).toString('hex')).toBe(hex(bytes).toString('hex'));
    expect(plain(dec('wire', type, hex(bytes)))).toEqual(plain(value));
  });

  test('chars and shorts keep the low bits of the XDR int when decoding, as rxgen does', () => {
    expect(dec('wire', 'w_char', hex('000000ff'))).toBe(-1);
    expect(dec('wire', 'w_uchar', hex('ffffffff'))).toBe(255);
    expect(dec('wire', 'w_ushort', hex('ffffffff'))).toBe(65535);
    expect(dec('wire', 'w_short', hex('00018000'))).toBe(-32768);
  });

  test('a bool that is neither 0 nor 1, and a discriminant without an arm, do not decode', () => {
    expect(() => dec('wire', 'w_bool', hex('00000002'))).toThrow(MalformedError);
    expect(() => dec('wire', 'w_strict', hex('00000003 00000000'))).toThrow(/union w_strict has no arm for d = 3/);
    expect(() => enc('wire', 'w_strict', { d: 3, x: 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'w_strict.d' }));
  });
});

describe('rxgen: bounds are checked when encoding and when decoding', () => {
  test.each([
    ['w_str', 'abcdef', 'w_str', '00000006 61626364 65660000', /opaque length 6 exceeds 5/],
    ['w_var', new Uint8Array(6), 'w_var.length', '00000006 00000000 00000000', /opaque length 6 exceeds 5/],
    ['w_arr', [1, 2, 3, 4], 'w_arr.length', '00000004 00000001 00000002 00000003 00000004', /array count 4 exceeds 3/],
  ])('%s: too long to encode, and refused when a peer sends it', (type, value, argument, bytes, decodeError) => {
    expect(() => enc('wire', type, value)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument }));
    expect(() => dec('wire', type, hex(bytes))).toThrow(decodeError);
  });

  test('fixed sizes are exact', () => {
    expect(() => enc('wire', 'w_vec', [1, 2, 3])).toThrow(expect.objectContaining({ argument: 'w_vec.length', message: expect.stringContaining('exactly 2') }));
    expect(() => enc('wire', 'w_fixed', new Uint8Array(4))).toThrow(expect.objectContaining({ argument: 'w_fixed.length' }));
    expect(() => enc('wire', 'w_chars', 'abcde')).toThrow(expect.objectContaining({ argument: 'w_chars', message: expect.stringContaining('shorter than 5 bytes') }));
    expect(() => dec('wire', 'w_vec', hex('00000001'))).toThrow(/needs 4 bytes, 0 left/);
  });

  test('errors name the offending field by its path, with its value', () => {
    const scalars = { i: 0, u: 0, ii: 0, uu: 0, ulone: 0, s: 0, us: 0, c: 0, uc: 0, b: false, h: 0n, uh: 0n, hh: 0n, f: 0, d: 0, color: 0, color2: 0, alias: 0 };
    expect(() => enc('wire', 'w_pair', { a: '1', b: 'x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', argument: 'w_pair.a', value: '1' }));
    expect(() => enc('ks', 'ks_scalars', { ...scalars, us: 70000 })).toThrow(expect.objectContaining({
      code: 'ERR_OUT_OF_RANGE', argument: 'ks_scalars.us', message: 'The value of "ks_scalars.us" is out of range. It must be an integer from 0 to 65535. Received 70000',
    }));
    expect(() => enc('ks', 'ks_scalars', { ...scalars, h: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', argument: 'ks_scalars.h' }));
    expect(() => enc('ks', 'ks_scalars', { ...scalars, uh: -1n })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'ks_scalars.uh' }));
    expect(() => enc('ks', 'ks_nodeptr', { value: 1, next: { value: 2, next: { value: 'x', next: null } } }))
      .toThrow(expect.objectContaining({ argument: 'ks_nodeptr.next.next.value' }));
    expect(() => enc('vl', 'bulkaddrs', [1, 2, -3])).toThrow(expect.objectContaining({ argument: 'bulkaddrs[2]' }));
    expect(() => enc('wire', 'w_pair', null)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', argument: 'w_pair' }));
  });
});

describe('rxgen: property tests of the generated codecs', () => {
  const typesOf = (m: string) => models[m].types.map((t) => t.name).concat(m === 'vl' || m === 'ks' ? ['afsUUID'] : []);

  test.each(['wire', 'ks', 'vl'])('every type of %s decodes to what was encoded, and nothing is left over', (m) => {
    const arb = new Arbitraries(models[m]);
    for (const type of typesOf(m)) {
      fc.assert(fc.property(arb.of(type), (v) => {
        expect(plain(dec(m, type, enc(m, type, v)))).toEqual(plain(v));
      }), { numRuns: 60 });
    }
  });

  test.each(['wire', 'ks', 'vl'])('for every type of %s, trailing bytes and every truncation are MalformedError', (m) => {
    const arb = new Arbitraries(models[m]);
    for (const type of typesOf(m)) {
      fc.assert(fc.property(arb.of(type), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (v, cut, extra) => {
        const bytes = enc(m, type, v);
        expect(() => dec(m, type, Buffer.concat([bytes, extra]))).toThrow(MalformedError);
        if (bytes.length > 0) expect(() => dec(m, type, bytes.subarray(0, cut % bytes.length))).toThrow(MalformedError);
      }), { numRuns: 30 });
    }
  });

  test('random bytes either decode or fail with MalformedError, never another error', () => {
    for (const [m, type] of [['vl', 'nvldbentry'], ['vl', 'uvldbentry'], ['ks', 'ks_arrays'], ['ks', 'ks_u'], ['ks', 'ks_nodeptr'], ['vl', 'nbulkentries']]) {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          dec(m, type, Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedError);
        }
      }), { numRuns: 200 });
    }
  });
});

describe('rxgen: XdrWriter.i64 and XdrReader.i64 (signed 64-bit, for hyper and afs_int64)', () => {
  test('encode and decode the whole signed range, big-endian', () => {
    const w = new XdrWriter().i64(-1n).i64(2n ** 63n - 1n).i64(-(2n ** 63n)).i64(-5);
    expect(w.toBuffer().toString('hex')).toBe('ffffffffffffffff7fffffffffffffff8000000000000000fffffffffffffffb');
    const r = new XdrReader(w.toBuffer());
    expect([r.i64(), r.i64(), r.i64(), r.i64()]).toEqual([-1n, 2n ** 63n - 1n, -(2n ** 63n), -5n]);
    r.end();
  });

  test('bad values are typed errors naming the value; a short body is MalformedError', () => {
    expect(() => new XdrWriter().i64(2n ** 63n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'i64' }));
    expect(() => new XdrWriter().i64(1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: 1.5 }));
    expect(() => new XdrWriter().i64('1' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', value: '1' }));
    expect(() => new XdrReader(Buffer.alloc(7)).i64()).toThrow(new MalformedError('XDR', 'i64 needs 8 bytes, 7 left', 0));
  });
});
