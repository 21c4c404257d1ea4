/**
 * The generator (lib/rxgen), loaded when a subcommand needs it: `rxrpc gen`
 * and `rxrpc call --xg`. It is loaded at run time so that the rest of the
 * command works in a build without it, and a missing generator is a clear
 * error (exit 3) rather than a crash.
 *
 * What the command relies on, from lib/rxgen/index.ts:
 *   generate(source, { fileName, includePaths?, defines?, errorTables? }) -> { files, inputs, model }
 *   generateFile(path, outDir, { includePaths?, importFrom?, defines?, errorTables? }) -> string[] (paths written)
 *   errors: RxgenSyntaxError (code ERR_RXGEN_SYNTAX, message "file:line:column: reason")
 * and from lib/rxgen/model.ts the shape of `model` (declared below as far as it is used).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, EnvironmentError, EXIT } from './errors';

/** How a value travels (lib/rxgen/model.ts Shape). */
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
  /** Position among the package's procedures (rxgen's statistics function index). */
  index?: number;
}

export interface PackageModel {
  prefix: string;
  statIndex?: number;
  procs: ProcModel[];
}

export interface Model {
  consts: Array<{ name: string; value: number | string }>;
  types: TypeModel[];
  packages: PackageModel[];
  errorTables: Array<{ name: string; codes: Array<{ name: string; code: number; message: string }> }>;
}

export interface GenerateOptions {
  includePaths?: readonly string[];
  importFrom?: string;
  defines?: Readonly<Record<string, string>>;
  errorTables?: readonly string[];
}

export interface RxgenModule {
  generate(source: string, options: GenerateOptions & { fileName: string }): { files: Map<string, string>; inputs: string[]; model: Model };
  generateFile(path: string, outDir: string, options?: GenerateOptions): string[];
}

// Where the compiled generator sits next to this module's compiled self:
// build/lib/cli -> build/lib/rxgen, dist/cli -> dist/rxgen.
const RXGEN_PATH = join(__dirname, '..', 'rxgen');

let loaded: RxgenModule | undefined;

/** The generator, or an EnvironmentError saying it is not in this build. */
export function loadRxgen(path = RXGEN_PATH): RxgenModule {
  if (loaded && path === RXGEN_PATH) return loaded;
  let mod: Partial<RxgenModule>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(path) as Partial<RxgenModule>;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    // Only the generator itself missing; an error inside it is reported as it is.
    if (e.code === 'MODULE_NOT_FOUND' && e.message?.includes(path)) {
      throw new EnvironmentError(`the interface generator is not part of this build of rxrpc (no ${path})`,
        'ERR_RXRPC_NO_GENERATOR', 'it comes with the rxgen generator (lib/rxgen); build a version of rxrpc that has it',
        { cause: err });
    }
    throw err;
  }
  if (typeof mod.generate !== 'function' || typeof mod.generateFile !== 'function') {
    throw new EnvironmentError(`the interface generator at ${path} does not have generate() and generateFile()`, 'ERR_RXRPC_NO_GENERATOR');
  }
  if (path === RXGEN_PATH) loaded = mod as RxgenModule;
  return mod as RxgenModule;
}

/** An error in an interface file (RxgenSyntaxError) or a file that cannot be read: exit 1, with the generator's message. */
export function interfaceError(err: unknown): unknown {
  const e = err as { code?: string; message?: string; path?: string };
  if (e?.code === 'ERR_RXGEN_SYNTAX') return new CliError(e.message ?? String(err), EXIT.FAILED, 'ERR_RXGEN_SYNTAX', undefined, { cause: err });
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR') {
    return new CliError(e.message ?? String(err), EXIT.FAILED, e.code, undefined, { cause: err });
  }
  return err;
}

/** Reads an interface file and returns what it defines. */
export function loadInterface(file: string, options: GenerateOptions = {}, rxgen = loadRxgen()): Model {
  try {
    const source = readFileSync(file, 'utf8');
    return rxgen.generate(source, { ...options, fileName: file }).model;
  } catch (err) {
    throw interfaceError(err);
  }
}
