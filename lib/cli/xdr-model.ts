/**
 * XDR by an interface's model, at run time: the request of one procedure from
 * arguments typed on the command line, and its reply decoded into plain
 * values. It follows the encoding the generated TypeScript uses (rxgen's):
 * every integer narrower than 32 bits travels as a 4-byte XDR int, char[N]
 * as N ints, pointers outside parameters as a bool and the item.
 *
 * Arguments, one per IN or INOUT parameter, in order:
 * - integers: decimal or 0x hex, or the name of a constant or enum member;
 *   64-bit ones may exceed 2^53; bool: true or false (or 1, 0);
 * - strings and char arrays: the text itself;
 * - opaque: hex;
 * - structs, unions, arrays and optional data: JSON. A struct's fields left
 *   out are zero (empty, false, null); unknown fields are an error. A union is
 *   an object with its discriminant and the arm's field; optional data is null
 *   or the value. afsUUID also takes the form 8-4-4-4-12 hex digits.
 */
import { readFileSync } from 'node:fs';
import { generate, GenerateOptions, GenerateResult, MalformedError, XdrReader, XdrWriter } from '../index';
import { CliError, EXIT, UsageError } from './errors';

/**
 * The part of the generator's model (lib/rxgen/model.ts, GenerateResult's
 * `model`) this codec reads. The generator's Model is assignable to it (checked
 * below); the codec also describes afsUUID's bytes, which the generator does
 * not model, with the extra primitive 'byte'.
 */
export type Shape =
  | { k: 'prim'; prim: string }
  | { k: 'named'; name: string }
  | { k: 'string'; max: number }
  | { k: 'opaque'; max: number }
  | { k: 'fixedOpaque'; size: number }
  | { k: 'chars'; size: number }
  | { k: 'vector'; of: Shape; size: number }
  | { k: 'array'; of: Shape; max: number }
  | { k: 'optional'; of: Shape };

export interface Field {
  name: string;
  shape: Shape;
}

export type TypeModel =
  | { kind: 'struct'; name: string; fields: Field[] }
  | { kind: 'union'; name: string; discriminant: Field; bool: boolean; arms: Array<{ value: number; label?: string; field?: Field }>; default?: { field?: Field } }
  | { kind: 'enum'; name: string; members: Array<{ name: string; value: number }> }
  | { kind: 'typedef'; name: string; shape: Shape };

export interface ParamModel {
  name: string;
  direction: 'IN' | 'OUT' | 'INOUT';
  shape: Shape;
}

export interface ProcModel {
  name: string;
  opcode: number;
  params: ParamModel[];
  split: boolean;
}

export interface PackageModel {
  prefix: string;
  procs: ProcModel[];
}

export interface Model {
  consts: Array<{ name: string; value: number | string }>;
  types: TypeModel[];
  packages: PackageModel[];
  errorTables: Array<{ name: string; codes: Array<{ name: string; code: number; message: string }> }>;
}

// Fails to compile if the generator's model stops fitting the codec's view of it.
const fromGenerator: (m: GenerateResult['model']) => Model = (m) => m;
void fromGenerator;

/** An interface file's model, by the generator; its errors (RxgenSyntaxError: file:line:column) and unreadable files exit 1. */
export function loadInterface(file: string, options: Omit<GenerateOptions, 'fileName'> = {}): Model {
  try {
    return generate(readFileSync(file, 'utf8'), { ...options, fileName: file }).model;
  } catch (err) {
    throw interfaceError(err);
  }
}

/** An error in an interface file or one that cannot be read, as the command reports it (exit 1); anything else as it is. */
export function interfaceError(err: unknown): unknown {
  const e = err as { code?: unknown; message?: string } | null;
  if (typeof e?.code === 'string' && ['ERR_RXGEN_SYNTAX', 'ENOENT', 'EACCES', 'EISDIR'].includes(e.code)) {
    return new CliError(e.message ?? String(err), EXIT.FAILED, e.code, undefined, { cause: err });
  }
  return err;
}

const INT_RANGE: Record<string, [number, number]> = {
  int32: [-0x80000000, 0x7fffffff], uint32: [0, 0xffffffff], char: [-128, 127], uchar: [0, 255],
  short: [-32768, 32767], ushort: [0, 65535],
  // afsUUID's clock_seq and node bytes: 0-255, sent as sign-extended chars (xdr_char), as OpenAFS does.
  byte: [0, 255],
};

/** The built-in types rxgen's output provides (lib/rxgen codegen: afsUUID, afs_time64). */
const BUILTINS: Record<string, TypeModel> = {
  afsUUID: {
    kind: 'struct', name: 'afsUUID', fields: [
      { name: 'time_low', shape: { k: 'prim', prim: 'uint32' } },
      { name: 'time_mid', shape: { k: 'prim', prim: 'ushort' } },
      { name: 'time_hi_and_version', shape: { k: 'prim', prim: 'ushort' } },
      { name: 'clock_seq_hi_and_reserved', shape: { k: 'prim', prim: 'byte' } },
      { name: 'clock_seq_low', shape: { k: 'prim', prim: 'byte' } },
      { name: 'node', shape: { k: 'vector', of: { k: 'prim', prim: 'byte' }, size: 6 } },
    ],
  },
  afs_time64: { kind: 'struct', name: 'afs_time64', fields: [{ name: 'ticks', shape: { k: 'prim', prim: 'int64' } }] },
};

/** A mistake in an argument: which one, and why. */
function bad(at: string, message: string): never {
  throw new UsageError(`${at}: ${message}`);
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export class InterfaceCodec {
  private readonly types = new Map<string, TypeModel>();
  private readonly values = new Map<string, number>();
  private readonly enumNames = new Map<string, Map<number, string>>();

  constructor(readonly model: Model) {
    for (const t of Object.values(BUILTINS)) this.types.set(t.name, t);
    for (const t of model.types) {
      this.types.set(t.name, t);
      if (t.kind === 'enum') {
        this.enumNames.set(t.name, new Map(t.members.map((m) => [m.value, m.name])));
        for (const m of t.members) this.values.set(m.name, m.value);
      }
    }
    for (const c of model.consts) if (typeof c.value === 'number') this.values.set(c.name, c.value);
  }

  /** The procedure NAME (with or without its package prefix) or opcode. */
  findProc(name: string): { pkg: PackageModel; proc: ProcModel } {
    const all = this.model.packages.flatMap((pkg) => pkg.procs.map((proc) => ({ pkg, proc })));
    const found = all.filter(({ pkg, proc }) => proc.name === name || `${pkg.prefix}${proc.name}` === name || String(proc.opcode) === name);
    if (found.length === 1) return found[0];
    const list = all.map(({ pkg, proc }) => `${pkg.prefix}${proc.name} (${proc.opcode})`).join(', ');
    if (found.length > 1) bad('--proc', `${JSON.stringify(name)} names more than one procedure; add the package prefix: ${list}`);
    return bad('--proc', `no procedure ${JSON.stringify(name)} in the interface; it has ${list || 'none'}`);
  }

  /** A parameter list for messages: "volumename (string<65>), entry (OUT uvldbentry)". */
  signature(proc: ProcModel): string {
    return proc.params.map((p) => `${p.direction === 'IN' ? '' : `${p.direction} `}${p.name} ${describe(p.shape)}`).join(', ') || 'no parameters';
  }

  /** The request of `proc`: its opcode, then each IN and INOUT argument, parsed from the command line. */
  encodeRequest(pkg: PackageModel, proc: ProcModel, args: readonly string[]): Buffer {
    if (proc.split) {
      throw new UsageError(`${pkg.prefix}${proc.name} is a split procedure (a streaming call with data between its arguments ` +
        'and its results); rxrpc call makes whole calls only');
    }
    const ins = proc.params.filter((p) => p.direction !== 'OUT');
    if (args.length !== ins.length) {
      throw new UsageError(`${pkg.prefix}${proc.name} takes ${ins.length} argument${ins.length === 1 ? '' : 's'}` +
        `${ins.length ? `: ${ins.map((p) => `${p.name} ${describe(p.shape)}`).join(', ')}` : ''}; got ${args.length}`);
    }
    const w = new XdrWriter().u32(proc.opcode);
    ins.forEach((p, i) => this.encode(w, p.shape, this.parseArgument(p.shape, args[i], p.name), p.name));
    return w.toBuffer();
  }

  /** The reply of `proc`: its OUT and INOUT parameters, by name. Throws MalformedError if it does not decode. */
  decodeReply(proc: ProcModel, reply: Uint8Array): Record<string, unknown> {
    const r = new XdrReader(reply);
    const out: Record<string, unknown> = {};
    for (const p of proc.params) if (p.direction !== 'IN') out[p.name] = this.decode(r, p.shape);
    r.end();
    return out;
  }

  /** Abort codes the interface's error tables name, with their messages. */
  errorNames(): Map<number, { name: string; message: string }> {
    const m = new Map<number, { name: string; message: string }>();
    for (const t of this.model.errorTables) for (const c of t.codes) m.set(c.code | 0, { name: c.name, message: c.message });
    return m;
  }

  // ---- arguments from the command line

  private resolve(shape: Shape): Shape | TypeModel {
    let s: Shape = shape;
    for (let i = 0; i < 64; i++) {
      if (s.k !== 'named') return s;
      const t = this.types.get(s.name);
      if (!t) throw new Error(`the interface model has no type ${s.name}`);
      if (t.kind !== 'typedef') return t;
      s = t.shape;
    }
    throw new Error(`typedef loop at ${shape.k === 'named' ? shape.name : shape.k}`);
  }

  /** One command-line argument as a value of `shape`: scalars from the text, the rest from JSON. */
  parseArgument(shape: Shape, text: string, at: string): unknown {
    const s = this.resolve(shape);
    if ('k' in s) {
      if (s.k === 'vector' || s.k === 'array' || s.k === 'optional') return parseJson(text, at);
      return text; // scalars, strings and opaque convert from text in encode()
    }
    if (s.kind === 'enum') return text;
    if (s.kind === 'struct' && s.name === 'afsUUID' && !text.trim().startsWith('{')) return text;
    return parseJson(text, at);
  }

  // ---- encoding

  private integer(v: unknown, at: string, min: number, max: number): number {
    let n: number | undefined;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string') {
      const t = v.trim();
      if (/^-?\d+$/.test(t)) n = Number(t);
      else if (/^-?0x[0-9a-f]+$/i.test(t)) n = t.startsWith('-') ? -Number(t.slice(1)) : Number(t);
      else if (this.values.has(t)) n = this.values.get(t);
      else bad(at, `expected an integer (or a constant of the interface), not ${show(v)}`);
    } else bad(at, `expected an integer, not ${show(v)}`);
    if (!Number.isInteger(n) || n! < min || n! > max) bad(at, `must be an integer from ${min} to ${max}, not ${show(v)}`);
    return n!;
  }

  private bigInteger(v: unknown, at: string, signed: boolean): bigint {
    let n: bigint;
    try {
      if (typeof v === 'bigint') n = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
      else if (typeof v === 'string' && /^-?(\d+|0x[0-9a-f]+)$/i.test(v.trim())) {
        const t = v.trim();
        n = t.startsWith('-') ? -BigInt(t.slice(1)) : BigInt(t);
      } else return bad(at, `expected a 64-bit integer, not ${show(v)}`);
    } catch {
      return bad(at, `expected a 64-bit integer, not ${show(v)}`);
    }
    if ((signed ? BigInt.asIntN(64, n) : BigInt.asUintN(64, n)) !== n) {
      bad(at, `must be ${signed ? 'from -2^63 to 2^63-1' : 'from 0 to 2^64-1'}, not ${n}`);
    }
    return n;
  }

  private boolean(v: unknown, at: string): boolean {
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === '1' || v === 1) return true;
    if (v === 'false' || v === '0' || v === 0) return false;
    return bad(at, `expected true or false, not ${show(v)}`);
  }

  private bytes(v: unknown, at: string): Buffer {
    if (typeof v !== 'string') bad(at, `expected bytes in hex, not ${show(v)}`);
    const t = (v as string).trim().replace(/^0x/i, '').replace(/[\s:]/g, '');
    if (!/^([0-9a-f]{2})*$/i.test(t)) bad(at, `expected bytes in hex (pairs of digits), not ${show(v)}`);
    return Buffer.from(t, 'hex');
  }

  private text(v: unknown, at: string, max: number, what: string): string {
    if (typeof v !== 'string') bad(at, `expected a string, not ${show(v)}`);
    const length = Buffer.byteLength(v as string, 'utf8');
    if (length > max) bad(at, `${what}: ${length} bytes in UTF-8, more than ${max}`);
    return v as string;
  }

  /** Writes `v` as `shape`; `at` names the value in errors (volumename, attributes.Mask, ...). */
  encode(w: XdrWriter, shape: Shape, v: unknown, at: string): void {
    if (shape.k === 'named') {
      this.encodeType(w, this.types.get(shape.name) ?? bad(at, `unknown type ${shape.name}`), v, at);
      return;
    }
    switch (shape.k) {
      case 'prim':
        return this.encodePrim(w, shape.prim, v, at);
      case 'string':
        w.string(this.text(v, at, shape.max, 'too long'));
        return;
      case 'chars': {
        const t = this.text(v, at, shape.size - 1, `too long for char[${shape.size}] (it ends with a NUL)`);
        if (t.includes('\0')) bad(at, 'must not contain NUL characters');
        w.chars(t, shape.size);
        return;
      }
      case 'opaque': {
        const b = this.bytes(v, at);
        if (b.length > shape.max) bad(at, `${b.length} bytes, more than ${shape.max}`);
        w.opaque(b);
        return;
      }
      case 'fixedOpaque': {
        const b = this.bytes(v, at);
        if (b.length !== shape.size) bad(at, `must be exactly ${shape.size} bytes, not ${b.length}`);
        w.fixed(b);
        return;
      }
      case 'vector':
      case 'array': {
        if (!Array.isArray(v)) bad(at, `expected a JSON array, not ${show(v)}`);
        const list = v as unknown[];
        if (shape.k === 'vector' && list.length !== shape.size) bad(at, `must have exactly ${shape.size} items, not ${list.length}`);
        if (shape.k === 'array') {
          if (list.length > shape.max) bad(at, `at most ${shape.max} items, not ${list.length}`);
          w.u32(list.length);
        }
        list.forEach((item, i) => this.encode(w, shape.of, item, `${at}[${i}]`));
        return;
      }
      case 'optional':
        if (v === null || v === undefined) {
          w.bool(false);
        } else {
          w.bool(true);
          this.encode(w, shape.of, v, at);
        }
    }
  }

  private encodePrim(w: XdrWriter, prim: string, v: unknown, at: string): void {
    const range = INT_RANGE[prim];
    if (range) {
      const n = this.integer(v, at, range[0], range[1]);
      // Narrow types travel as 4-byte ints; chars sign-extended, as OpenAFS sends them.
      if (prim === 'char' || prim === 'short' || prim === 'int32') w.i32(n);
      else if (prim === 'byte') w.i32(n << 24 >> 24);
      else w.u32(n);
      return;
    }
    switch (prim) {
      case 'int64':
        w.u64(BigInt.asUintN(64, this.bigInteger(v, at, true)));
        return;
      case 'uint64':
        w.u64(this.bigInteger(v, at, false));
        return;
      case 'bool':
        w.bool(this.boolean(v, at));
        return;
      case 'float':
      case 'double': {
        const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
        if (typeof n !== 'number' || Number.isNaN(n)) bad(at, `expected a number, not ${show(v)}`);
        const b = Buffer.alloc(prim === 'float' ? 4 : 8);
        if (prim === 'float') b.writeFloatBE(n as number);
        else b.writeDoubleBE(n as number);
        w.fixed(b);
        return;
      }
      default:
        throw new Error(`unknown primitive type ${prim}`);
    }
  }

  private encodeType(w: XdrWriter, t: TypeModel, v: unknown, at: string): void {
    switch (t.kind) {
      case 'typedef':
        return this.encode(w, t.shape, v, at);
      case 'enum': {
        const n = this.integer(v, at, -0x80000000, 0x7fffffff);
        if (!t.members.some((m) => m.value === n)) {
          bad(at, `${show(v)} is not a member of enum ${t.name} (${t.members.map((m) => m.name).join(', ')})`);
        }
        w.i32(n);
        return;
      }
      case 'struct': {
        let value = v;
        if (t.name === 'afsUUID' && typeof v === 'string') value = parseUuid(v, at);
        const o = this.object(value, at, t.name);
        const names = new Set(t.fields.map((f) => f.name));
        const unknown = Object.keys(o).filter((k) => !names.has(k));
        if (unknown.length) bad(at, `struct ${t.name} has no field ${unknown.join(', ')} (it has ${[...names].join(', ')})`);
        for (const f of t.fields) this.encode(w, f.shape, f.name in o ? o[f.name] : this.zero(f.shape), `${at}.${f.name}`);
        return;
      }
      case 'union': {
        const o = this.object(v, at, t.name);
        const d = t.discriminant;
        if (!(d.name in o)) bad(at, `union ${t.name} needs its discriminant ${d.name}`);
        const value = t.bool ? (this.boolean(o[d.name], `${at}.${d.name}`) ? 1 : 0) : this.discriminant(o[d.name], t, `${at}.${d.name}`);
        const arm = t.arms.find((a) => a.value === value);
        const field = arm ? arm.field : t.default ? t.default.field : bad(at, `union ${t.name} has no arm for ${d.name} = ${show(o[d.name])}`);
        const allowed = new Set([d.name, ...(field ? [field.name] : [])]);
        const extra = Object.keys(o).filter((k) => !allowed.has(k));
        if (extra.length) bad(at, `union ${t.name} with ${d.name} = ${show(o[d.name])} has no field ${extra.join(', ')}`);
        this.encode(w, d.shape, t.bool ? value === 1 : value, `${at}.${d.name}`);
        if (field) this.encode(w, field.shape, field.name in o ? o[field.name] : this.zero(field.shape), `${at}.${field.name}`);
      }
    }
  }

  private discriminant(v: unknown, t: Extract<TypeModel, { kind: 'union' }>, at: string): number {
    if (typeof v === 'string') {
      const byLabel = t.arms.find((a) => a.label === v);
      if (byLabel) return byLabel.value;
    }
    return this.integer(v, at, -0x80000000, 0xffffffff);
  }

  private object(v: unknown, at: string, type: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(at, `expected a JSON object for ${type}, not ${show(v)}`);
    return v as Record<string, unknown>;
  }

  /** The value a left-out field takes. */
  zero(shape: Shape): unknown {
    switch (shape.k) {
      case 'prim':
        return shape.prim === 'bool' ? false : shape.prim === 'int64' || shape.prim === 'uint64' ? 0n : 0;
      case 'string':
      case 'chars':
      case 'opaque':
        return '';
      case 'fixedOpaque':
        return '00'.repeat(shape.size);
      case 'vector':
        return Array.from({ length: shape.size }, () => this.zero(shape.of));
      case 'array':
        return [];
      case 'optional':
        return null;
      case 'named': {
        const t = this.types.get(shape.name);
        if (!t) return undefined;
        if (t.kind === 'typedef') return this.zero(t.shape);
        if (t.kind === 'enum') return t.members[0]?.value ?? 0;
        if (t.kind === 'struct') return {};
        const arm = t.arms[0];
        return arm ? { [t.discriminant.name]: t.bool ? arm.value === 1 : arm.value } : { [t.discriminant.name]: 0 };
      }
    }
  }

  // ---- decoding

  decode(r: XdrReader, shape: Shape): unknown {
    switch (shape.k) {
      case 'prim':
        return decodePrim(r, shape.prim);
      case 'string':
        return r.string(shape.max);
      case 'chars':
        return r.chars(shape.size);
      case 'opaque':
        return r.opaque(shape.max);
      case 'fixedOpaque':
        return r.fixed(shape.size);
      case 'vector':
        return Array.from({ length: shape.size }, () => this.decode(r, shape.of));
      case 'array':
        return r.array(() => this.decode(r, shape.of), shape.max);
      case 'optional':
        return r.bool() ? this.decode(r, shape.of) : null;
      case 'named': {
        const t = this.types.get(shape.name);
        if (!t) throw new MalformedError('reply', `the interface has no type ${shape.name}`);
        return this.decodeType(r, t);
      }
    }
  }

  private decodeType(r: XdrReader, t: TypeModel): unknown {
    switch (t.kind) {
      case 'typedef':
        return this.decode(r, t.shape);
      case 'enum': {
        const n = r.i32();
        return this.enumNames.get(t.name)?.get(n) ?? n;
      }
      case 'struct':
        return Object.fromEntries(t.fields.map((f: Field) => [f.name, this.decode(r, f.shape)]));
      case 'union': {
        const at = r.position;
        const d = this.decode(r, t.discriminant.shape);
        const value = typeof d === 'boolean' ? (d ? 1 : 0) : typeof d === 'number' ? d : this.values.get(String(d));
        const arm = t.arms.find((a) => a.value === value);
        const field = arm ? arm.field : t.default ? t.default.field : undefined;
        if (!arm && !t.default) throw new MalformedError('reply', `union ${t.name}: no arm for ${t.discriminant.name} = ${String(d)}`, at);
        const out: Record<string, unknown> = { [t.discriminant.name]: d };
        if (field) out[field.name] = this.decode(r, field.shape);
        return out;
      }
    }
  }
}

function decodePrim(r: XdrReader, prim: string): unknown {
  switch (prim) {
    case 'int32':
      return r.i32();
    case 'uint32':
      return r.u32();
    case 'int64':
      return BigInt.asIntN(64, r.u64());
    case 'uint64':
      return r.u64();
    case 'bool':
      return r.bool();
    case 'char':
      return r.i32() << 24 >> 24;
    case 'uchar':
      return r.u32() & 0xff;
    case 'byte':
      return r.i32() & 0xff;
    case 'short':
      return r.i32() << 16 >> 16;
    case 'ushort':
      return r.u32() & 0xffff;
    case 'float':
    case 'double': {
      const b = r.fixed(prim === 'float' ? 4 : 8);
      return prim === 'float' ? b.readFloatBE(0) : b.readDoubleBE(0);
    }
    default:
      throw new Error(`unknown primitive type ${prim}`);
  }
}

function parseJson(text: string, at: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    return bad(at, `expected JSON, not ${show(text)} (${(err as Error).message})`);
  }
}

/** 8-4-4-4-12 hex digits, as OpenAFS prints UUIDs, as afsUUID fields. */
function parseUuid(text: string, at: string): Record<string, unknown> {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{2})([0-9a-f]{2})-([0-9a-f]{12})$/i.exec(text.trim());
  if (!m) return bad(at, `expected a UUID (8-4-4-4-12 hex digits) or a JSON object, not ${show(text)}`);
  const node = Buffer.from(m[6], 'hex');
  return {
    time_low: Number.parseInt(m[1], 16), time_mid: Number.parseInt(m[2], 16), time_hi_and_version: Number.parseInt(m[3], 16),
    clock_seq_hi_and_reserved: Number.parseInt(m[4], 16), clock_seq_low: Number.parseInt(m[5], 16), node: [...node],
  };
}

/** How a shape is written in an interface: string<65>, afs_int32, nvldbentry<>. */
export function describe(s: Shape): string {
  switch (s.k) {
    case 'prim':
      return s.prim;
    case 'named':
      return s.name;
    case 'string':
      return s.max === 0xffffffff ? 'string<>' : `string<${s.max}>`;
    case 'chars':
      return `char[${s.size}]`;
    case 'opaque':
      return s.max === 0xffffffff ? 'opaque<>' : `opaque<${s.max}>`;
    case 'fixedOpaque':
      return `opaque[${s.size}]`;
    case 'vector':
      return `${describe(s.of)}[${s.size}]`;
    case 'array':
      return `${describe(s.of)}<${s.max === 0xffffffff ? '' : s.max}>`;
    case 'optional':
      return `*${describe(s.of)}`;
  }
}
