/**
 * For the generator's tests: compiling generated TypeScript with the
 * compiler's API (strict, and stricter), loading the result, and fast-check
 * arbitraries derived from the generator's own model of an interface.
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { Model, Shape, TypeModel } from '../../lib/rxgen/model';

/** The built library (build/lib/index), as generated code imports it in the tests. */
export const LIB = resolve(__dirname, '../../lib/index');
/** The source tree (for interfaces/ and node_modules/). */
export const ROOT = resolve(__dirname, '../../..');

export const STRICT: ts.CompilerOptions = {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  typeRoots: [join(ROOT, 'node_modules', '@types')],
  declaration: true,
  skipLibCheck: true,
};

/** Beyond --strict: what careful projects turn on as well. */
export const STRICTER: ts.CompilerOptions = {
  ...STRICT,
  noUnusedLocals: true,
  noUnusedParameters: true,
  noImplicitReturns: true,
  noFallthroughCasesInSwitch: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noPropertyAccessFromIndexSignature: true,
  noImplicitOverride: true,
  isolatedModules: true,
};

export interface Compiled {
  dir: string;
  diagnostics: string[];
  /** Requires a compiled file (by its .ts name). */
  load<T = Record<string, unknown>>(name: string): T;
}

/** Writes `files` into a fresh directory, type-checks them and emits JavaScript and declarations. */
export function compile(files: Record<string, string>, options: ts.CompilerOptions = STRICT): Compiled {
  const dir = mkdtempSync(join(tmpdir(), 'rxgen-tsc-'));
  const paths = Object.entries(files).map(([name, text]) => {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return path;
  });
  const program = ts.createProgram(paths, { ...options, outDir: dir, rootDir: dir });
  const emitted = program.emit();
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return text;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName.slice(dir.length + 1)}:${line + 1}:${character + 1}: ${text}`;
  });
  return {
    dir,
    diagnostics,
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    load: (name) => require(join(dir, name.replace(/\.ts$/, '.js'))),
  };
}

/** Makes values comparable: byte arrays (Buffer or Uint8Array) become plain arrays. */
export function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const INT: Record<string, [number, number]> = {
  int32: [-0x80000000, 0x7fffffff], uint32: [0, 0xffffffff], char: [-128, 127], uchar: [0, 255], short: [-32768, 32767], ushort: [0, 65535],
};

const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

/** Values of every type of an interface, as the generated codecs accept and return them. */
export class Arbitraries {
  private readonly types = new Map<string, TypeModel>();
  constructor(model: Model) {
    for (const t of model.types) this.types.set(t.name, t);
  }

  of(name: string): fc.Arbitrary<unknown> {
    return this.named(name, 0);
  }

  shape(s: Shape, depth = 0): fc.Arbitrary<unknown> {
    switch (s.k) {
      case 'prim':
        switch (s.prim) {
          case 'int64':
            return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
          case 'uint64':
            return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
          case 'bool':
            return fc.boolean();
          case 'float':
            return fc.float();
          case 'double':
            return fc.double();
          default:
            return fc.integer({ min: INT[s.prim][0], max: INT[s.prim][1] });
        }
      case 'named':
        return this.named(s.name, depth);
      case 'string':
        return fc.string({ unit: 'grapheme', maxLength: 12 }).filter((x) => utf8Length(x) <= s.max);
      case 'chars':
        return fc.string({ unit: 'grapheme', maxLength: s.size }).filter((x) => !x.includes('\0') && utf8Length(x) < s.size);
      case 'opaque':
        return fc.uint8Array({ maxLength: Math.min(s.max, 24) });
      case 'fixedOpaque':
        return fc.uint8Array({ minLength: s.size, maxLength: s.size });
      case 'vector':
        return fc.array(this.shape(s.of, depth), { minLength: s.size, maxLength: s.size });
      case 'array':
        return fc.array(this.shape(s.of, depth), { maxLength: Math.min(s.max, 4) });
      case 'optional':
        return depth > 2 ? fc.constant(null) : fc.option(this.shape(s.of, depth + 1), { nil: null });
    }
  }

  private named(name: string, depth: number): fc.Arbitrary<unknown> {
    if (name === 'afsUUID') {
      const byte = fc.integer({ min: 0, max: 255 });
      return fc.record({
        time_low: fc.integer({ min: 0, max: 0xffffffff }), time_mid: fc.integer({ min: 0, max: 0xffff }),
        time_hi_and_version: fc.integer({ min: 0, max: 0xffff }), clock_seq_hi_and_reserved: byte, clock_seq_low: byte,
        node: fc.array(byte, { minLength: 6, maxLength: 6 }),
      });
    }
    if (name === 'afs_time64') return fc.record({ ticks: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) });
    const t = this.types.get(name);
    if (!t) throw new Error(`no type ${name}`);
    switch (t.kind) {
      case 'struct':
        return fc.record(Object.fromEntries(t.fields.map((f) => [f.name, this.shape(f.shape, depth)])));
      case 'typedef':
        return this.shape(t.shape, depth);
      case 'enum':
        return fc.integer({ min: INT.int32[0], max: INT.int32[1] });
      case 'union': {
        const d = t.discriminant.name;
        const label = (v: number) => (t.bool ? v === 1 : v);
        const arms = t.arms.map((a) => fc.record({ [d]: fc.constant(label(a.value)), ...(a.field ? { [a.field.name]: this.shape(a.field.shape, depth) } : {}) }));
        if (t.default) {
          const taken = new Set(t.arms.map((a) => a.value));
          const f = t.default.field;
          arms.push(fc.record({
            [d]: this.shape(t.discriminant.shape, depth).filter((x) => !taken.has(x as number)),
            ...(f ? { [f.name]: this.shape(f.shape, depth) } : {}),
          }));
        }
        return fc.oneof(...arms);
      }
    }
  }
}
