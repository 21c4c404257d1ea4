/**
 * The generator's front end: what each construct of rxgen's language means
 * (as OpenAFS's rxgen reads it), and the errors malformed input gets.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, generateFile, RxgenSyntaxError } from '../../lib/rxgen';
import { errorTableBase } from '../../lib/rxgen/errtable';
import { Model, ProcModel, TypeModel } from '../../lib/rxgen/model';
import { Files, KITCHEN, optionsFor } from './rxgen-fixtures';

function model(source: string, files: Files = {}, extra = {}): Model {
  return generate(source, optionsFor({ ...files, '/t/t.xg': source }, '/t/t.xg', extra)).model;
}

function type(m: Model, name: string): TypeModel {
  const t = m.types.find((x) => x.name === name);
  if (!t) throw new Error(`no type ${name}`);
  return t;
}

function procs(m: Model, pkg = 0): Record<string, ProcModel> {
  return Object.fromEntries(m.packages[pkg].procs.map((p) => [p.name, p]));
}

function constant(m: Model, name: string): number | string | undefined {
  return m.consts.find((c) => c.name === name)?.value;
}

describe('rxgen: constructs', () => {
  const ks = generate(KITCHEN['/ks/ks.xg'], optionsFor(KITCHEN, '/ks/ks.xg'));

  test('const: decimal, hex, negative, octal, another constant, a string', () => {
    expect(constant(ks.model, 'KS_MAXNAME')).toBe(16);
    expect(constant(ks.model, 'KS_HEX')).toBe(0x7f);
    expect(constant(ks.model, 'KS_NEG')).toBe(-5);
    expect(constant(ks.model, 'KS_OCT')).toBe(8);
    expect(constant(ks.model, 'KS_ALIAS')).toBe(16);
    expect(constant(ks.model, 'KS_STR')).toBe('text');
    const text = ks.files.get('ks.ts')!;
    expect(text).toContain('export const KS_HEX = 0x7f;');
    expect(text).toContain('export const KS_STR = "text";');
  });

  test('enum: values count on from the last explicit one', () => {
    expect(type(ks.model, 'ks_color')).toMatchObject({
      kind: 'enum',
      members: [{ name: 'KS_RED', value: 0 }, { name: 'KS_GREEN', value: 5 }, { name: 'KS_BLUE', value: 6 }, { name: 'KS_PINK', value: 0x7f }],
    });
  });

  test('typedef, struct and declarations: fixed [N], variable <N> and <>, string, opaque, char arrays', () => {
    expect(type(ks.model, 'ks_name')).toMatchObject({ shape: { k: 'string', max: 16 } });
    expect(type(ks.model, 'ks_key')).toMatchObject({ shape: { k: 'fixedOpaque', size: 8 } });
    expect(type(ks.model, 'ks_any')).toMatchObject({ shape: { k: 'array', max: 0xffffffff, of: { k: 'prim', prim: 'int32' } } });
    const fields = Object.fromEntries((type(ks.model, 'ks_arrays') as { fields: { name: string; shape: unknown }[] }).fields.map((f) => [f.name, f.shape]));
    expect(fields).toMatchObject({
      name: { k: 'chars', size: 16 },
      fixed: { k: 'vector', size: 3, of: { k: 'prim', prim: 'int32' } },
      var: { k: 'array', max: 5, of: { k: 'prim', prim: 'uint32' } },
      unbounded: { k: 'array', max: 0xffffffff },
      str: { k: 'string', max: 16 },
      anystr: { k: 'string', max: 0xffffffff },
      fixedop: { k: 'fixedOpaque', size: 5 },
      varop: { k: 'opaque', max: 7 }, // the bound comes from a %#define line
      names: { k: 'vector', size: 2, of: { k: 'named', name: 'ks_name' } },
      nested: { k: 'named', name: 'ks_scalars' },
    });
  });

  test('built-in types: the integer spellings, 64-bit, bool, float, double, afsUUID, afs_time64', () => {
    const prims = (type(ks.model, 'ks_scalars') as { fields: { name: string; shape: { prim?: string } }[] }).fields.map((f) => f.shape.prim);
    expect(prims).toEqual(['int32', 'uint32', 'int32', 'uint32', 'uint32', 'short', 'ushort', 'char', 'uchar', 'bool', 'int64',
      'uint64', 'int64', 'float', 'double', undefined, undefined, undefined]);
    expect([...ks.model.builtins].sort()).toEqual(['afsUUID', 'afs_time64']);
  });

  test('pointers: optional data in structures and typedefs, by reference in parameters', () => {
    expect(type(ks.model, 'ks_nodeptr')).toMatchObject({ shape: { k: 'optional', of: { k: 'named', name: 'ks_node' } } });
    expect(type(ks.model, 'ks_optional')).toMatchObject({ fields: [{ shape: { k: 'optional' } }, { shape: { k: 'optional' } }] });
    expect(procs(ks.model).Echo.params[0]).toMatchObject({ name: 'input', shape: { k: 'named', name: 'ks_scalars' } });
  });

  test('union switch/case/default: arms by discriminant value, void arms, a bool discriminant', () => {
    expect(type(ks.model, 'ks_u')).toMatchObject({
      kind: 'union', bool: false, discriminant: { name: 'kind' },
      arms: [{ value: 0, field: { name: 'red' } }, { value: 5, field: undefined }, { value: 6, field: { name: 'blue' } }],
      default: { field: { name: 'other' } },
    });
    expect(type(ks.model, 'ks_b')).toMatchObject({ bool: true, arms: [{ value: 1 }, { value: 0 }], default: undefined });
  });

  test('procedures: opcodes from #defines in an included header, explicit numbers, and startingopcode', () => {
    const p = procs(ks.model);
    expect(p.Echo.opcode).toBe(1001);
    expect(p.Arrays.opcode).toBe(1002); // a #define continued with a backslash
    expect(p.Names.opcode).toBe(1012);
    expect(procs(ks.model, 1)).toMatchObject({ One: { opcode: 50 }, Two: { opcode: 51 } });
  });

  test('a parameter without IN/OUT/INOUT keeps the direction before it, also from the previous procedure', () => {
    const p = procs(ks.model);
    expect(p.Carry.params.map((x) => x.direction)).toEqual(['IN', 'IN', 'OUT', 'OUT']);
    expect(p.Carry2.params.map((x) => `${x.direction} ${x.name}`)).toEqual(['OUT e', 'IN f']);
    expect(p.Arrays.params.map((x) => x.direction)).toEqual(['INOUT', 'IN', 'OUT']);
  });

  test('package, prefix, statindex, splitprefix, split and multi', () => {
    expect(ks.model.packages.map((x) => [x.prefix, x.serverPrefix, x.statIndex])).toEqual([['KS_', 'S', 42], ['KT_', 'S', undefined]]);
    const p = procs(ks.model);
    expect([p.Fetch.split, p.Store.split, p.Echo.split, p.Nothing.multi]).toEqual([true, true, false, true]);
    expect(p.Fetch.splitPrefix).toEqual({ start: 'Begin', end: 'Finish' });
    const text = ks.files.get('ks.ts')!;
    expect(text).toContain('export async function BeginKS_Fetch(');
    expect(text).toContain('export async function FinishKS_Fetch(');
    expect(text).toContain('export interface SKS_Handlers {');
    expect(text).toContain('export const KS_STATINDEX = 42;');
    expect(text).toContain('export function KS_handler(');
    expect(text).toContain('export async function KS_Nothing(');
  });

  test('without splitprefix, split calls are StartX and EndX', () => {
    const text = generate('package P_\nGet(IN int a, OUT int *b) split = 1;\n', { fileName: 's.xg' }).files.get('s.ts')!;
    expect(text).toContain('export async function StartP_Get(');
    expect(text).toContain('export async function EndP_Get(');
  });

  test('automatic opcodes start at 0 and continue across packages, as in rxgen', () => {
    const m = model('package A_\nOne();\nTwo();\npackage B_\nThree();\n');
    expect(m.packages.map((p) => p.procs.map((x) => x.opcode))).toEqual([[0, 1], [2]]);
  });

  test('preprocessor: include guards, #ifdef/#ifndef/#else/#elif, #if expressions; skipped text is not read', () => {
    expect(constant(ks.model, 'KS_INCLUDED')).toBe(1);
    expect(constant(ks.model, 'KS_IF')).toBe(1);
    expect(ks.inputs).toEqual(['/ks/ks.xg', '/ks/ks_opcodes.h', '/ks/ks_opcodes.h', '/ks/ks_errors.et']);
    const m = model('#define A 3\n#if A * 2 == 6 && !defined(B) || 0\nconst X = 1;\n#else\nconst X = 2;\n#endif\n#undef A\n#ifdef A\nconst Y = 1;\n#else\nconst Y = 2;\n#endif\n');
    expect([constant(m, 'X'), constant(m, 'Y')]).toEqual([1, 2]);
  });

  test('defines given as options act as cpp -D', () => {
    const src = '#ifdef WITH_EXTRA\nconst EXTRA = SIZE;\n#endif\nconst ALWAYS = 1;\n';
    expect(model(src, {}, { defines: { WITH_EXTRA: '', SIZE: '9' } }).consts.map((c) => [c.name, c.value])).toEqual([['EXTRA', 9], ['ALWAYS', 1]]);
    expect(model(src).consts.map((c) => c.name)).toEqual(['ALWAYS']);
  });

  test('#include "file" looks beside the including file, then in include paths; <file> only in include paths', () => {
    const files = { '/inc/a.h': '#define A 4\n', '/t/b.h': '#define B 5\n' };
    const m = model('#include "b.h"\n#include <a.h>\n#include "a.h"\nconst X = A;\nconst Y = B;\n', files, { includePaths: ['/inc'] });
    expect([constant(m, 'X'), constant(m, 'Y')]).toEqual([4, 5]);
  });

  test('% lines and @{ @} blocks are left out; comments of both kinds are ignored', () => {
    const m = model('%this is C ) ( ;\n@{ verbatim ) ( @}\n/* a\n comment */ // another\nconst X = 1; % not at column 1 is an error\n'.replace(' % not at column 1 is an error', ''));
    expect(m.consts).toHaveLength(1);
  });

  test('error tables: codes from the table name, explicit indexes, and in the output a code -> name table', () => {
    expect(errorTableBase('VL', { file: 'x', line: 1, column: 1 })).toBe(363520);
    expect(ks.model.errorTables).toMatchObject([{
      name: 'KS', base: 185088, codes: [{ name: 'KS_BROKEN', code: 185088 }, { name: 'KS_GONE', code: 185091 }],
    }]);
    const text = ks.files.get('ks.ts')!;
    expect(text).toContain('export const KS_GONE = 185091;');
    expect(text).toContain('[185091, { name: "KS_GONE", message: "it is gone" }]');
  });

  test('error tables given as options', () => {
    const files = { '/e/x.et': 'et XY\n ec XY_ONE, "one"\nend\n' };
    const m = model('const A = 1;\n', files, { errorTables: ['/e/x.et'] });
    expect(m.errorTables[0].codes).toEqual([expect.objectContaining({ name: 'XY_ONE', code: errorTableBase('XY', { file: '', line: 0, column: 0 }) })]);
  });

  test('the output is named after the interface and imports from the given module', () => {
    const r = generate('const A = 1;\nstruct s { int a; };\n', { fileName: 'dir/some.name.xg', importFrom: '../lib' });
    expect([...r.files.keys()]).toEqual(['some.name.ts']);
    expect(r.files.get('some.name.ts')).toMatch(/from "\.\.\/lib";/);
    expect(generate('struct s { int a; };', { fileName: 'x.xg' }).files.get('x.ts')).toMatch(/from "rxrpc";/);
  });

  test('generateFile reads includes beside the file and writes the output', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxgen-'));
    try {
      writeFileSync(join(dir, 'ops.h'), '#define OP 7\n');
      writeFileSync(join(dir, 'x.xg'), '#include "ops.h"\npackage X_\nPing() = OP;\n');
      const written = generateFile(join(dir, 'x.xg'), join(dir, 'out'));
      expect(written).toEqual([join(dir, 'out', 'x.ts')]);
      expect(readFileSync(written[0], 'utf8')).toContain('Ping: 7,');
      expect(() => generateFile(join(dir, 'none.xg'), dir)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('names the output cannot use are changed; keywords stay as property names', () => {
    const text = generate('struct Promise { int delete; };\npackage P_\nX(IN int new, int client, OUT int *options) = 1;\n', { fileName: 'k.xg' }).files.get('k.ts')!;
    expect(text).toContain('export interface Promise_ {');
    expect(text).toContain('  delete: number; // int32');
    expect(text).toMatch(/export async function P_X\(client: \$Client, destination: \$ServiceDestination, new_: number, client_: number, options\?: \$CallOptions\): Promise<P_X_Out>/);
  });
});

describe('rxgen: malformed input names the file, the line and what was expected', () => {
  const cases: Array<[string, string, Files | undefined, RegExp]> = [
    ['a missing semicolon', 'struct s {\n  int a;\n}\nconst X = 1;\n', undefined, /^\/t\/t\.xg:4:1: expected ';' after the definition of s, found keyword 'const'$/],
    ['a missing field semicolon', 'struct s {\n  int a\n};\n', undefined, /^\/t\/t\.xg:3:1: expected ';' after field a of struct s, found '}'$/],
    ['an unknown type', 'struct s {\n  widget w;\n};\n', undefined, /^\/t\/t\.xg:2:3: unknown type widget$/],
    ['an unknown constant', 'struct s { int a[NOPE]; };', undefined, /^\/t\/t\.xg:1:18: unknown constant NOPE$/],
    ['a type used as a constant', 'struct s { int a; };\nstruct u { int b[s]; };', undefined, /^\/t\/t\.xg:2:18: s is a type \(defined at \/t\/t\.xg:1\), not a constant$/],
    ['a definition twice', 'const A = 1;\nstruct A { int a; };', undefined, /^\/t\/t\.xg:2:8: A is already defined at \/t\/t\.xg:1$/],
    ['a field twice', 'struct s {\n int a;\n int a;\n};', undefined, /^\/t\/t\.xg:3:6: field a of struct s is already declared at line 2$/],
    ['a keyword as a name', 'struct s { int split; };', undefined, /^\/t\/t\.xg:1:16: expected '\*' or a name after type int, found keyword 'split'$/],
    ['a definition keyword missing', 'const A = 1;\n}', undefined, /^\/t\/t\.xg:2:1: expected a definition .*, found '}'$/],
    ['an illegal character', 'const A = 1;\nconst B = $;', undefined, /^\/t\/t\.xg:2:11: illegal character '\$'$/],
    ['an unterminated comment', 'const A = 1;\n/* open\n\n', undefined, /^\/t\/t\.xg:2:1: unterminated comment: expected \*\/$/],
    ['an unterminated string', 'const A = "abc\n;', undefined, /^\/t\/t\.xg:1:11: unterminated string constant: expected "$/],
    ['a bad number', 'const A = 12ab;', undefined, /^\/t\/t\.xg:1:13: invalid character 'a' in number 12$/],
    ['void outside a union', 'struct s { void v; };', undefined, /^\/t\/t\.xg:1:12: void is allowed only in union definitions$/],
    ['opaque without a size', 'struct s { opaque o; };', undefined, /^\/t\/t\.xg:1:19: opaque o needs a size: opaque o\[N\] or opaque o<N>$/],
    ['string without <>', 'struct s { string n[4]; };', undefined, /^\/t\/t\.xg:1:19: string n needs a variable-length bound/],
    ['an array of pointers', 'struct s { int *p[4]; };', undefined, /^\/t\/t\.xg:1:18: no arrays of pointers \(p\): use a typedef$/],
    ['an enum with a trailing comma', 'enum e { A, B, };', undefined, /^\/t\/t\.xg:1:16: expected an enum member name, found '}'$/],
    ['a union without a case', 'union u switch (int d) { default: int x; };', undefined, /^\/t\/t\.xg:1:26: expected 'case' in union u, found keyword 'default'$/],
    ['a case value twice', 'union u switch (int d) {\n case 1: int a;\n case 1: int b;\n};', undefined, /^\/t\/t\.xg:3:7: case 1 \(1\) is already handled at line 2$/],
    ['a case out of the discriminant range', 'union u switch (unsigned short d) { case -1: int a; };', undefined, /^\/t\/t\.xg:1:42: case -1 \(-1\) is out of range/],
    ['a struct discriminant', 'struct s { int a; };\nunion u switch (s d) { case 1: int a; };', undefined, /^\/t\/t\.xg:2:19: the discriminant of union u must be an integer, bool or enum type$/],
    ['a procedure outside a package', 'Get(IN int a) = 1;', undefined, /^\/t\/t\.xg:1:1: procedure Get must follow a 'package' statement$/],
    ['a first parameter without a direction', 'package P_\nGet(int a) = 1;', undefined, /^\/t\/t\.xg:2:9: expected IN, OUT or INOUT before parameter a/],
    ['an input array without a bound', 'package P_\nGet(IN int a<>) = 1;', undefined, /^\/t\/t\.xg:2:13: input arrays must have a bound: a<N>$/],
    ['a parameter twice', 'package P_\nGet(IN int a, OUT int *a) = 1;', undefined, /^\/t\/t\.xg:2:24: parameter a of Get is already declared at line 2$/],
    ['an opcode twice', 'package P_\nA() = 5;\nB() = 5;', undefined, /^\/t\/t\.xg:3:1: opcode 5 of B is already used by A \(line 2\)$/],
    ['an opcode after automatic numbering', 'package P_\nA();\nB() = 5;', undefined, /^\/t\/t\.xg:3:5: opcode assignment is not allowed here/],
    ['an opcode that is not a number', 'package P_\nA() = 0x10;', undefined, /^\/t\/t\.xg:2:7: the opcode of A must be a decimal number, found 0x10$/],
    ['junk after a procedure', 'package P_\nA() split split;', undefined, /^\/t\/t\.xg:2:11: expected '=' or ';' after procedure A, found keyword 'split'$/],
    ['statindex before package', 'statindex 3\n', undefined, /^\/t\/t\.xg:1:1: 'statindex' must follow a 'package' statement$/],
    ['statindex twice', 'package P_\nstatindex 3\nstatindex 4\n', undefined, /^\/t\/t\.xg:3:1: package P_ already has a statindex \(3\)$/],
    ['a splitprefix without names', 'splitprefix ;', undefined, /^\/t\/t\.xg:1:1: splitprefix needs IN=name, OUT=name or both$/],
    ['an include that does not exist', 'const A = 1;\n#include "nope.h"\n', undefined, /^\/t\/t\.xg:2:1: cannot find include file "nope.h" \(looked in \/t\)$/],
    ['#endif without #if', 'const A = 1;\n#endif\n', undefined, /^\/t\/t\.xg:2:1: #endif without #if$/],
    ['#else twice', '#if 1\n#else\n#else\n#endif\n', undefined, /^\/t\/t\.xg:3:1: #else after #else \(the #if is at \/t\/t\.xg:1\)$/],
    ['an unterminated #if', 'const A = 1;\n#ifdef X\nconst B = 2;\n', undefined, /^\/t\/t\.xg:2:1: unterminated conditional: expected #endif$/],
    ['#error', '#ifndef NEEDED\n#error NEEDED must be defined\n#endif\n', undefined, /^\/t\/t\.xg:2:1: #error NEEDED must be defined$/],
    ['a bad #if expression', '#if 1 +\n#endif\n', undefined, /^\/t\/t\.xg:1:8: expected an operand at the end of the #if expression$/],
    ['an unknown directive', '#frobnicate\n', undefined, /^\/t\/t\.xg:1:1: unknown preprocessor directive #frobnicate$/],
    ['a function-like macro', '#define F(x) x\nconst A = F(1);\n', undefined, /^\/t\/t\.xg:2:11: function-like macro F \(defined at \/t\/t\.xg:1\) is not supported$/],
    ['a macro that expands to the wrong thing', '#define OPS (1)\npackage P_\nA() = OPS;\n', undefined,
      /^\/t\/t\.xg:3:7: expected the opcode of A \(a number or a constant's name\), found '\(' \(from macro OPS, defined at \/t\/t\.xg:1\)$/],
    ['an error in an included header', '#include "h.h"\nconst A = 1;\n', { '/t/h.h': '#define X 1\n#if\n#endif\n' }, /^\/t\/h\.h:2:4: expected an expression in the #if expression$/],
    ['an error table with a syntax error', '#include "e.et"\n', { '/t/e.et': 'error_table E\n ec E_ONE "no comma"\nend\n' }, /^\/t\/e\.et:2:11: expected ',' or '=', found "no comma"$/],
    ['an error table without end', '#include "e.et"\n', { '/t/e.et': 'error_table E\n ec E_ONE, "x"\n' }, /^\/t\/e\.et:3:1: expected 'ec' or 'end', found end of file$/],
    ['an error code that clashes with a constant', 'const E_ONE = 1;\n#include "e.et"\n', { '/t/e.et': 'et E\n ec E_ONE, "x"\nend\n' }, /^\/t\/e\.et:2:5: error code E_ONE is already defined at \/t\/t\.xg:1$/],
    ['a %#define that is not a number', '%#define SIZE htons(4)\nstruct s { int a[SIZE]; };\n', undefined,
      /^\/t\/t\.xg:2:18: SIZE is defined only by a % line for C \(\/t\/t\.xg:1: "htons\(4\)"\), and that is not a constant number here: unknown constant htons$/],
    ['a constant defined in terms of itself', 'const A = B;\nconst B = A;\n', undefined, /^\/t\/t\.xg:1:7: constant A is defined in terms of itself$/],
    ['a string constant as a size', 'const S = "x";\nstruct s { int a[S]; };\n', undefined, /^\/t\/t\.xg:2:18: the size of a\[\] must be an integer, but S is "x"$/],
    ['redefining a built-in type', 'struct afs_time64 { int a; };\n', undefined, /^\/t\/t\.xg:1:8: afs_time64 is a built-in type and cannot be redefined$/],
    ['end of file inside a struct', 'struct s {\n int a;\n', undefined, /^\/t\/t\.xg:3:1: expected a type, found end of file$/],
  ];

  test.each(cases)('%s', (_what, source, files, message) => {
    let error: unknown;
    try {
      model(source, files);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RxgenSyntaxError);
    const e = error as RxgenSyntaxError;
    expect(e.message).toMatch(message);
    expect(e).toMatchObject({ code: 'ERR_RXGEN_SYNTAX', name: 'RxgenSyntaxError' });
    const [, file, line, column] = /^(.*?):(\d+):(\d+): /.exec(e.message)!;
    expect({ file: e.file, line: e.line, column: e.column }).toEqual({ file, line: Number(line), column: Number(column) });
    expect(e.reason).toBe(e.message.slice(`${file}:${line}:${column}: `.length));
  });

  test('bad arguments are typed errors before anything is read', () => {
    expect(() => generate(42 as unknown as string, { fileName: 'x.xg' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => generate('', {} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', argument: 'options.fileName' }));
    expect(() => generate('', { fileName: 'x.xg', includePaths: 'dir' as never })).toThrow(expect.objectContaining({ argument: 'options.includePaths' }));
    expect(() => generate('', { fileName: 'x.xg', defines: { A: 1 as never } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
