/** What the parser makes of an interface file, before names are resolved. */
import { Position } from './errors';
import { ErrorTable } from './errtable';

/** How a declaration uses its type: as is, fixed array [N], variable array <N>, or pointer. */
export type Relation = 'alias' | 'vector' | 'array' | 'pointer';

/** A number, or a name of a constant or enum member, as written. */
export interface ValueRef {
  kind: 'number' | 'ident' | 'string';
  text: string;
  at: Position;
}

export interface TypeSpec {
  /** A built-in (afs_int32, u_int, string, opaque, void, ...) or a defined type. */
  name: string;
  /** "struct", "enum" or "union" when written before the name. */
  prefix?: string;
  at: Position;
}

export interface Declaration {
  /** Empty for a void union arm. */
  name: string;
  type: TypeSpec;
  rel: Relation;
  /** The size of [N], or the bound of <N>; absent for <>. */
  size?: ValueRef;
  at: Position;
}

export interface ConstDef {
  kind: 'const';
  name: string;
  value: ValueRef;
  at: Position;
}

export interface StructDef {
  kind: 'struct';
  name: string;
  fields: Declaration[];
  at: Position;
}

export interface UnionCase {
  label: ValueRef;
  decl: Declaration;
}

export interface UnionDef {
  kind: 'union';
  name: string;
  discriminant: Declaration;
  cases: UnionCase[];
  default?: Declaration;
  at: Position;
}

export interface EnumMember {
  name: string;
  value?: ValueRef;
  at: Position;
}

export interface EnumDef {
  kind: 'enum';
  name: string;
  members: EnumMember[];
  at: Position;
}

export interface TypedefDef {
  kind: 'typedef';
  name: string;
  decl: Declaration;
  at: Position;
}

export type Definition = ConstDef | StructDef | UnionDef | EnumDef | TypedefDef;

export type Direction = 'IN' | 'OUT' | 'INOUT';

export interface Param {
  name: string;
  decl: Declaration;
  direction: Direction;
  at: Position;
}

export interface Proc {
  name: string;
  params: Param[];
  /** A split call: the caller streams data between the arguments and the results. */
  split: boolean;
  /** Declared multi (rxgen adds multi_ macros; here it is an ordinary call). */
  multi: boolean;
  /** The opcode as written after '='; absent when numbered automatically. */
  opcodeRef?: ValueRef;
  /** The automatic opcode. */
  autoOpcode?: number;
  /** The names of the two halves of a split call (splitprefix), e.g. Start and End. */
  splitPrefix: { start: string; end: string };
  /** The server prefix in force (prefix S). */
  serverPrefix: string;
  at: Position;
}

export interface Package {
  /** The package prefix, e.g. "VL_". */
  prefix: string;
  statIndex?: number;
  procs: Proc[];
  at: Position;
}

export interface InterfaceFile {
  definitions: Definition[];
  packages: Package[];
  errorTables: ErrorTable[];
  /** Every file read, the main one first. */
  files: string[];
  /** Macros defined by % lines (%#define NAME value) for the C output. */
  passDefines: ReadonlyMap<string, { body: string; at: Position }>;
}
