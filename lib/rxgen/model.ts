/**
 * Names resolved and rules checked: every type exists, every size and case
 * label is a known constant, opcodes are unique within a package. The result
 * describes each value by its XDR shape, which is what the code generator
 * works from.
 */
import {
  Declaration, Definition, Direction, EnumDef, InterfaceFile, Proc, StructDef, TypedefDef, UnionDef, ValueRef,
} from './ast';
import { fail, Position, RxgenSyntaxError } from './errors';
import { ErrorTable } from './errtable';
import { parseNumber } from './parser';
import { evaluateExpression } from './preprocess';

export type Prim = 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'char' | 'uchar' | 'short' | 'ushort' | 'float' | 'double';

export type Shape =
  | { k: 'prim'; prim: Prim }
  /** A defined type (struct, union, enum, typedef) or the built-in afsUUID. */
  | { k: 'named'; name: string }
  | { k: 'string'; max: number }
  | { k: 'opaque'; max: number }
  | { k: 'fixedOpaque'; size: number }
  /** char name[N]: a NUL-terminated string in N XDR ints. */
  | { k: 'chars'; size: number }
  | { k: 'vector'; of: Shape; size: number }
  | { k: 'array'; of: Shape; max: number }
  /** A pointer outside parameters: optional data (a bool, then the item when true). */
  | { k: 'optional'; of: Shape };

export const UNBOUNDED = 0xffffffff;

const PRIMS: Record<string, Prim> = {
  int: 'int32', afs_int32: 'int32', long: 'int32', int32_t: 'int32',
  u_int: 'uint32', afs_uint32: 'uint32', u_long: 'uint32', uint32_t: 'uint32',
  afs_int64: 'int64', hyper: 'int64', int64_t: 'int64', int64: 'int64',
  afs_uint64: 'uint64', u_hyper: 'uint64', uint64_t: 'uint64', uint64: 'uint64',
  bool: 'bool', char: 'char', u_char: 'uchar', short: 'short', u_short: 'ushort',
  int8_t: 'char', uint8_t: 'uchar', int16_t: 'short', uint16_t: 'ushort',
  float: 'float', double: 'double',
};

export interface Field {
  name: string;
  shape: Shape;
  at: Position;
}

export interface UnionArm {
  /** The discriminant value, as a number (0 or 1 for a bool discriminant). */
  value: number;
  /** The constant or enum member the case names, if it names one the output defines. */
  label?: string;
  /** Absent for a void arm. */
  field?: Field;
}

export type TypeModel =
  | { kind: 'struct'; name: string; fields: Field[]; at: Position }
  | { kind: 'union'; name: string; discriminant: Field; bool: boolean; arms: UnionArm[]; default?: { field?: Field }; at: Position }
  | { kind: 'enum'; name: string; members: { name: string; value: number }[]; at: Position }
  | { kind: 'typedef'; name: string; shape: Shape; at: Position };

export interface ConstModel {
  name: string;
  value: number | string;
  /** How the number was written, when it was written in hex. */
  hex?: boolean;
  at: Position;
}

export interface ParamModel {
  name: string;
  direction: Direction;
  shape: Shape;
  at: Position;
}

export interface ProcModel {
  name: string;
  opcode: number;
  params: ParamModel[];
  split: boolean;
  multi: boolean;
  splitPrefix: { start: string; end: string };
  /** Its index among the package's procedures (rxgen's statistics index). */
  index: number;
  at: Position;
}

export interface PackageModel {
  prefix: string;
  serverPrefix: string;
  statIndex?: number;
  procs: ProcModel[];
  at: Position;
}

export interface Model {
  consts: ConstModel[];
  types: TypeModel[];
  packages: PackageModel[];
  errorTables: ErrorTable[];
  /** The built-in types used (afsUUID, afs_time64). */
  builtins: ReadonlySet<string>;
}

/** Types rx's XDR library provides, as rxgen's output expects them. */
export const BUILTIN_TYPES = new Set(['afsUUID', 'afs_time64']);

const BUILTIN_VALUES: Record<string, number> = { TRUE: 1, FALSE: 0 };

type Sym =
  | { kind: 'const'; def: { name: string; value: ValueRef; at: Position } }
  | { kind: 'member'; value: number; at: Position; def: EnumDef }
  | { kind: 'type'; def: Exclude<Definition, { kind: 'const' }> };

class Resolver {
  private readonly symbols = new Map<string, Sym>();
  private readonly constValues = new Map<string, number | string>();
  private readonly resolving = new Set<string>();
  readonly builtins = new Set<string>();

  constructor(private readonly file: InterfaceFile, extraTables: ErrorTable[]) {
    for (const def of file.definitions) {
      if (def.kind === 'const') this.declare(def.name, { kind: 'const', def }, def.at);
      else this.declare(def.name, { kind: 'type', def }, def.at);
    }
    for (const def of file.definitions) {
      if (def.kind === 'enum') this.enumMembers(def);
    }
    for (const table of [...file.errorTables, ...extraTables]) {
      for (const code of table.codes) {
        if (!this.symbols.has(code.name)) continue;
        const other = this.symbols.get(code.name)!;
        const at = other.kind === 'type' ? other.def.at : other.kind === 'const' ? other.def.at : other.at;
        fail(code.at, `error code ${code.name} is already defined at ${at.file}:${at.line}`);
      }
    }
  }

  private declare(name: string, sym: Sym, at: Position): void {
    if (name in PRIMS || BUILTIN_TYPES.has(name)) fail(at, `${name} is a built-in type and cannot be redefined`);
    const earlier = this.symbols.get(name);
    if (earlier) {
      const e = earlier.kind === 'member' ? earlier.at : earlier.def.at;
      fail(at, `${name} is already defined at ${e.file}:${e.line}`);
    }
    this.symbols.set(name, sym);
  }

  /** Enum members are constants too: explicit values, or the last one plus one. */
  private enumMembers(def: EnumDef): void {
    let last: number | undefined;
    let count = 0;
    for (const m of def.members) {
      let value: number;
      if (m.value) {
        value = this.number(m.value, `the value of ${m.name}`);
        last = value;
        count = 1;
      } else {
        value = (last ?? 0) + count++;
      }
      if (value < -0x80000000 || value > 0x7fffffff) fail(m.at, `enum member ${m.name} = ${value} does not fit in 32 bits`);
      this.declare(m.name, { kind: 'member', value, at: m.at, def }, m.at);
    }
  }

  /** The value of a constant: a number, a string, or another constant's name. */
  constValue(name: string, at: Position): number | string {
    const known = this.constValues.get(name);
    if (known !== undefined) return known;
    const sym = this.symbols.get(name);
    if (!sym) {
      const pass = this.file.passDefines.get(name);
      if (pass) return this.passValue(name, pass, at);
      if (name in BUILTIN_VALUES) return BUILTIN_VALUES[name];
      return fail(at, `unknown constant ${name}`);
    }
    if (sym.kind === 'member') return sym.value;
    if (sym.kind === 'type') return fail(at, `${name} is a type (defined at ${sym.def.at.file}:${sym.def.at.line}), not a constant`);
    if (this.resolving.has(name)) return fail(sym.def.at, `constant ${name} is defined in terms of itself`);
    this.resolving.add(name);
    const v = sym.def.value;
    const value = v.kind === 'string' ? v.text : v.kind === 'number' ? parseNumber(v.text) : this.constValue(v.text, v.at);
    this.resolving.delete(name);
    this.constValues.set(name, value);
    return value;
  }

  /** A constant that only a %#define line gives: its text must be an integer constant expression. */
  private passValue(name: string, pass: { body: string; at: Position }, at: Position): number {
    if (this.resolving.has(name)) return fail(pass.at, `%#define ${name} is defined in terms of itself`);
    this.resolving.add(name);
    let value: number;
    try {
      value = evaluateExpression(pass.body, pass.at, `%#define ${name}`, (n, where) => {
        const v = this.constValue(n, where);
        if (typeof v !== 'number') fail(where, `${n} is a string, not a number`);
        return v;
      });
    } catch (err) {
      if (!(err instanceof RxgenSyntaxError)) throw err;
      return fail(at, `${name} is defined only by a % line for C (${pass.at.file}:${pass.at.line}: ${JSON.stringify(pass.body)}), ` +
        `and that is not a constant number here: ${err.reason}`);
    } finally {
      this.resolving.delete(name);
    }
    this.constValues.set(name, value);
    return value;
  }

  number(ref: ValueRef, what: string): number {
    const value = ref.kind === 'number' ? parseNumber(ref.text) : this.constValue(ref.text, ref.at);
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      fail(ref.at, `${what} must be an integer, but ${ref.text} is ${JSON.stringify(value)}`);
    }
    return value;
  }

  private size(ref: ValueRef | undefined, what: string): number {
    if (!ref) return UNBOUNDED;
    const n = this.number(ref, what);
    if (n < 0 || n > UNBOUNDED) fail(ref.at, `${what} must be from 0 to ${UNBOUNDED}, found ${n}`);
    return n;
  }

  /** The shape of a declaration; in parameters a pointer only passes by reference. */
  shape(decl: Declaration, inParam: boolean): Shape {
    const { type, rel } = decl;
    const label = decl.name || type.name;
    if (type.name === 'string') return { k: 'string', max: this.size(decl.size, `the bound of string ${label}`) };
    if (type.name === 'opaque') {
      return rel === 'vector'
        ? { k: 'fixedOpaque', size: this.size(decl.size, `the size of opaque ${label}`) }
        : { k: 'opaque', max: this.size(decl.size, `the bound of opaque ${label}`) };
    }
    if (type.name === 'char' && rel === 'vector') {
      const size = this.size(decl.size, `the size of char ${label}`);
      if (size < 1) fail(decl.size!.at, `char ${label}[${size}] cannot hold a string (it needs room for the NUL)`);
      return { k: 'chars', size };
    }
    let base: Shape;
    const prim = PRIMS[type.name];
    if (prim) {
      base = { k: 'prim', prim };
    } else if (BUILTIN_TYPES.has(type.name)) {
      this.builtins.add(type.name);
      base = { k: 'named', name: type.name };
    } else {
      const sym = this.symbols.get(type.name);
      if (!sym) fail(type.at, `unknown type ${type.name}`);
      if (sym.kind !== 'type') {
        const at = sym.kind === 'member' ? sym.at : sym.def.at;
        fail(type.at, `${type.name} is a constant (defined at ${at.file}:${at.line}), not a type`);
      }
      base = { k: 'named', name: type.name };
    }
    switch (rel) {
      case 'alias':
        return base;
      case 'pointer':
        return inParam ? base : { k: 'optional', of: base };
      case 'vector':
        return { k: 'vector', of: base, size: this.size(decl.size, `the size of ${label}[]`) };
      case 'array':
        return { k: 'array', of: base, max: this.size(decl.size, `the bound of ${label}<>`) };
    }
  }

  field(decl: Declaration, inParam = false): Field {
    if (decl.name === '__proto__') fail(decl.at, 'the name __proto__ cannot be used');
    return { name: decl.name, shape: this.shape(decl, inParam), at: decl.at };
  }

  /** Follows typedefs to what a named type finally is. */
  underlying(shape: Shape): Shape | TypeModel['kind'] {
    let s = shape;
    for (let i = 0; i < 100 && s.k === 'named'; i++) {
      if (BUILTIN_TYPES.has(s.name)) return 'struct';
      const sym = this.symbols.get(s.name);
      if (!sym || sym.kind !== 'type') return s;
      const def = sym.def;
      if (def.kind !== 'typedef') return def.kind;
      s = this.shape(def.decl, false);
    }
    return s;
  }

  struct(def: StructDef): TypeModel {
    const fields: Field[] = [];
    for (const decl of def.fields) {
      const dup = fields.find((f) => f.name === decl.name);
      if (dup) fail(decl.at, `field ${decl.name} of struct ${def.name} is already declared at line ${dup.at.line}`);
      fields.push(this.field(decl));
    }
    return { kind: 'struct', name: def.name, fields, at: def.at };
  }

  union(def: UnionDef): TypeModel {
    const discriminant = this.field(def.discriminant);
    const under = this.underlying(discriminant.shape);
    let range: [number, number];
    let bool = false;
    if (under === 'enum') {
      range = [-0x80000000, 0x7fffffff];
    } else if (typeof under === 'object' && under.k === 'prim' && !['int64', 'uint64', 'float', 'double'].includes(under.prim)) {
      bool = under.prim === 'bool';
      range = ({
        int32: [-0x80000000, 0x7fffffff], uint32: [0, 0xffffffff], bool: [0, 1], char: [-128, 127], uchar: [0, 255],
        short: [-32768, 32767], ushort: [0, 65535],
      } as Record<string, [number, number]>)[under.prim];
    } else {
      return fail(def.discriminant.at, `the discriminant of union ${def.name} must be an integer, bool or enum type`);
    }
    const names = new Map<string, Position>([[discriminant.name, discriminant.at]]);
    const seen = new Map<number, Position>();
    const arm = (decl: Declaration): Field | undefined => {
      if (decl.type.name === 'void') return undefined;
      const earlier = names.get(decl.name);
      if (earlier) fail(decl.at, `${decl.name} is already declared in union ${def.name} at line ${earlier.line}`);
      names.set(decl.name, decl.at);
      return this.field(decl);
    };
    const arms: UnionArm[] = [];
    for (const c of def.cases) {
      const value = this.number(c.label, 'a case label');
      if (value < range[0] || value > range[1]) fail(c.label.at, `case ${c.label.text} (${value}) is out of range for the discriminant of union ${def.name}`);
      const earlier = seen.get(value);
      if (earlier) fail(c.label.at, `case ${c.label.text} (${value}) is already handled at line ${earlier.line}`);
      seen.set(value, c.label.at);
      const sym = c.label.kind === 'ident' ? this.symbols.get(c.label.text) : undefined;
      const named = !bool && sym && (sym.kind === 'member' || (sym.kind === 'const' && typeof this.constValue(c.label.text, c.label.at) === 'number'));
      arms.push({ value, field: arm(c.decl), label: named ? c.label.text : undefined });
    }
    return {
      kind: 'union', name: def.name, discriminant, bool, arms, at: def.at,
      default: def.default ? { field: arm(def.default) } : undefined,
    };
  }

  typedef(def: TypedefDef): TypeModel {
    return { kind: 'typedef', name: def.name, shape: this.shape(def.decl, false), at: def.at };
  }

  enum(def: EnumDef): TypeModel {
    return {
      kind: 'enum', name: def.name, at: def.at,
      members: def.members.map((m) => ({ name: m.name, value: (this.symbols.get(m.name) as { value: number }).value })),
    };
  }

  proc(proc: Proc, index: number): ProcModel {
    let opcode: number;
    if (proc.opcodeRef) {
      opcode = this.number(proc.opcodeRef, `the opcode of ${proc.name}`);
      if (opcode < 0 || opcode > 0x7fffffff) fail(proc.opcodeRef.at, `the opcode of ${proc.name} must be from 0 to ${0x7fffffff}, found ${opcode}`);
    } else {
      opcode = proc.autoOpcode!;
    }
    return {
      name: proc.name, opcode, split: proc.split, multi: proc.multi, splitPrefix: proc.splitPrefix, index, at: proc.at,
      params: proc.params.map((p) => ({ name: p.name, direction: p.direction, shape: this.shape(p.decl, true), at: p.at })),
    };
  }
}

export function buildModel(file: InterfaceFile, extraTables: ErrorTable[] = []): Model {
  const r = new Resolver(file, extraTables);
  const consts: ConstModel[] = [];
  const types: TypeModel[] = [];
  for (const def of file.definitions) {
    switch (def.kind) {
      case 'const':
        consts.push({
          name: def.name, value: r.constValue(def.name, def.at), at: def.at,
          hex: def.value.kind === 'number' && /^-?0[xX]/.test(def.value.text),
        });
        break;
      case 'struct':
        types.push(r.struct(def));
        break;
      case 'union':
        types.push(r.union(def));
        break;
      case 'enum':
        types.push(r.enum(def));
        break;
      case 'typedef':
        types.push(r.typedef(def));
        break;
    }
  }
  const packages: PackageModel[] = [];
  const seenPrefixes = new Map<string, Position>();
  for (const pkg of file.packages) {
    const earlier = seenPrefixes.get(pkg.prefix);
    if (earlier) fail(pkg.at, `package ${pkg.prefix} is already declared at ${earlier.file}:${earlier.line}`);
    seenPrefixes.set(pkg.prefix, pkg.at);
    const procs = pkg.procs.map((p, i) => r.proc(p, i));
    const byOpcode = new Map<number, ProcModel>();
    const byName = new Map<string, ProcModel>();
    for (const p of procs) {
      const dup = byOpcode.get(p.opcode);
      if (dup) fail(p.at, `opcode ${p.opcode} of ${p.name} is already used by ${dup.name} (line ${dup.at.line})`);
      byOpcode.set(p.opcode, p);
      const same = byName.get(p.name);
      if (same) fail(p.at, `procedure ${pkg.prefix}${p.name} is already defined at line ${same.at.line}`);
      byName.set(p.name, p);
    }
    packages.push({
      prefix: pkg.prefix, statIndex: pkg.statIndex, procs, at: pkg.at,
      serverPrefix: pkg.procs[0]?.serverPrefix ?? '',
    });
  }
  return { consts, types, packages, errorTables: [...file.errorTables, ...extraTables], builtins: r.builtins };
}
