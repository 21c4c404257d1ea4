/**
 * rxgen for TypeScript: from an interface definition in rxgen's language
 * (.xg) to types, XDR codecs, a typed client and a server handler built on
 * this library. `rxrpc gen FILE.xg -o DIR` calls generateFile().
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InvalidArgTypeError, InvalidArgValueError } from '../errors';
import { emitTypeScript } from './codegen';
import { ErrorTable, parseErrorTable } from './errtable';
import { buildModel, Model } from './model';
import { Parser } from './parser';

export { RxgenSyntaxError } from './errors';
export type { ErrorTable, ErrorCode } from './errtable';

export interface GenerateOptions {
  /** The interface file's name or path: used in messages, to find its "includes", and to name the output. */
  fileName: string;
  /** The module specifier the generated code imports the library from (default 'rxrpc'). */
  importFrom?: string;
  /** Directories searched for #include files (after the including file's directory for "file"). */
  includePaths?: readonly string[];
  /** Reads an included file; returns undefined (or throws ENOENT) when it does not exist. Default: the file system. */
  readFile?: (path: string) => string | undefined;
  /** Macros defined before the first line, as with cpp -D. */
  defines?: Readonly<Record<string, string>>;
  /** Error tables (.et files) whose codes name abort codes, besides those the interface #includes. */
  errorTables?: readonly string[];
}

export interface GenerateResult {
  /** Output file name (e.g. "vldbint.ts") -> its contents. */
  files: Map<string, string>;
  /** Every file that was read, the interface first. */
  inputs: string[];
  /** What the interface defines, resolved. */
  model: Model;
}

function readFromDisk(path: string): string | undefined {
  return readFileSync(path, 'utf8');
}

function checkOptions(options: unknown): asserts options is GenerateOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'an object', options);
  const o = options as Record<string, unknown>;
  if (typeof o.fileName !== 'string' || o.fileName === '') {
    throw new InvalidArgTypeError('options.fileName', 'a non-empty string', o.fileName);
  }
  if (o.importFrom !== undefined && (typeof o.importFrom !== 'string' || o.importFrom === '')) {
    throw new InvalidArgTypeError('options.importFrom', 'a non-empty string', o.importFrom);
  }
  for (const key of ['includePaths', 'errorTables'] as const) {
    const v = o[key];
    if (v !== undefined && (!Array.isArray(v) || v.some((p) => typeof p !== 'string'))) {
      throw new InvalidArgTypeError(`options.${key}`, 'an array of strings', v);
    }
  }
  if (o.readFile !== undefined && typeof o.readFile !== 'function') throw new InvalidArgTypeError('options.readFile', 'a function', o.readFile);
  if (o.defines !== undefined) {
    if (typeof o.defines !== 'object' || o.defines === null) throw new InvalidArgTypeError('options.defines', 'an object', o.defines);
    for (const [k, v] of Object.entries(o.defines)) {
      if (typeof v !== 'string') throw new InvalidArgValueError(`options.defines.${k}`, 'must be a string', v);
    }
  }
}

/** The output file name for an interface file: its base name with .ts instead of .xg. */
export function outputName(fileName: string): string {
  return `${basename(fileName).replace(/\.[^.]*$/, '') || 'interface'}.ts`;
}

/**
 * Generates TypeScript from the text of an interface file. Throws
 * RxgenSyntaxError (code ERR_RXGEN_SYNTAX, with file, line and column) for
 * anything wrong in the interface or what it includes.
 */
export function generate(source: string, options: GenerateOptions): GenerateResult {
  if (typeof source !== 'string') throw new InvalidArgTypeError('source', 'of type string', source);
  checkOptions(options);
  const read = options.readFile ?? readFromDisk;
  const parser = new Parser(source, options.fileName, {
    includePaths: options.includePaths ?? [],
    readFile: read,
    defines: options.defines ?? {},
  });
  const file = parser.parse();
  const extra: ErrorTable[] = [];
  for (const path of options.errorTables ?? []) {
    const text = read(path);
    if (text === undefined) {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT', errno: -2, syscall: 'open', path });
    }
    extra.push(parseErrorTable(text, path));
    file.files.push(path);
  }
  const model = buildModel(file, extra);
  const text = emitTypeScript(model, { importFrom: options.importFrom ?? 'rxrpc', source: basename(options.fileName) });
  return { files: new Map([[outputName(options.fileName), text]]), inputs: file.files, model };
}

/**
 * Generates TypeScript from an interface file on disk into `outDir` (created
 * if missing) and returns the paths written.
 */
export function generateFile(path: string, outDir: string, options: Omit<GenerateOptions, 'fileName'> = {}): string[] {
  if (typeof path !== 'string' || path === '') throw new InvalidArgTypeError('path', 'a non-empty string', path);
  if (typeof outDir !== 'string' || outDir === '') throw new InvalidArgTypeError('outDir', 'a non-empty string', outDir);
  const source = readFileSync(path, 'utf8');
  const result = generate(source, { ...options, fileName: path });
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of result.files) {
    const out = join(outDir, name);
    if (resolve(out) === resolve(path)) throw new InvalidArgValueError('outDir', `would overwrite the interface file ${path}`, outDir);
    writeFileSync(out, text);
    written.push(out);
  }
  return written;
}
