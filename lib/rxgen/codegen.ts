/**
 * TypeScript from the model: types, XDR encoders and decoders on XdrWriter
 * and XdrReader, one async client function per procedure, a Handler for
 * Server per package, opcode and error tables. The output imports only the
 * library's public API, from a configurable module specifier.
 */
import { ErrorTable } from './errtable';
import { fail } from './errors';
import { Field, Model, PackageModel, ParamModel, ProcModel, Shape, TypeModel, UNBOUNDED, UnionArm } from './model';

export interface CodegenOptions {
  /** The module the output imports the library from. */
  importFrom: string;
  /** The interface file's name, for the header comment. */
  source: string;
}

// Names the output cannot use for its own declarations: reserved words, and
// globals it refers to.
const RESERVED = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'enum', 'export',
  'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'null', 'return', 'super',
  'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with', 'implements', 'interface', 'let',
  'package', 'private', 'protected', 'public', 'static', 'yield', 'await', 'arguments', 'eval', 'any', 'unknown', 'number',
  'bigint', 'boolean', 'string', 'symbol', 'object', 'never', 'undefined', 'type', 'as', 'async', 'of', 'declare',
  'readonly', 'keyof', 'infer', 'is', 'asserts', 'module', 'namespace', 'require', 'global',
  'Array', 'Uint8Array', 'Promise', 'Partial', 'Extract', 'Exclude', 'Number', 'DataView', 'Object', 'Map', 'ReadonlyMap',
  'Buffer', 'Error', 'Symbol', 'AsyncIterator', 'BigInt', 'TextEncoder', 'JSON', 'String', 'ArrayBuffer',
]);

/** A declaration name the output can use. */
function safe(name: string): string {
  return RESERVED.has(name) ? `${name}_` : name;
}

const INT_RANGE: Record<string, [number, number]> = {
  int32: [-0x80000000, 0x7fffffff], uint32: [0, 0xffffffff], char: [-128, 127], uchar: [0, 255],
  short: [-32768, 32767], ushort: [0, 65535],
};

/** Code for one helper, and the helpers and imports it needs. */
interface Helper {
  code: string;
  needs?: string[];
  imports?: string[];
}

const HELPERS: Record<string, Helper> = {
  $int: {
    imports: ['InvalidArgTypeError', 'OutOfRangeError'],
    code: `function $int(v: unknown, at: string, min: number, max: number): number {
  if (typeof v !== 'number') throw new $InvalidArgTypeError(at, 'of type number', v);
  if (!Number.isInteger(v) || v < min || v > max) throw new $OutOfRangeError(at, \`an integer from \${min} to \${max}\`, v);
  return v;
}`,
  },
  $int64: {
    imports: ['InvalidArgTypeError', 'OutOfRangeError'],
    code: `function $int64(v: unknown, at: string, signed: boolean): bigint {
  if (typeof v !== 'bigint') throw new $InvalidArgTypeError(at, 'of type bigint', v);
  if ((signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v)) !== v) {
    throw new $OutOfRangeError(at, signed ? 'from -2^63 to 2^63-1' : 'from 0 to 2^64-1', v);
  }
  return v;
}`,
  },
  $boolean: {
    imports: ['InvalidArgTypeError'],
    code: `function $boolean(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new $InvalidArgTypeError(at, 'of type boolean', v);
  return v;
}`,
  },
  $float: {
    imports: ['InvalidArgTypeError'],
    code: `function $float(v: unknown, at: string, size: 4 | 8): Uint8Array {
  if (typeof v !== 'number') throw new $InvalidArgTypeError(at, 'of type number', v);
  const b = new Uint8Array(size);
  const view = new DataView(b.buffer);
  if (size === 4) view.setFloat32(0, v);
  else view.setFloat64(0, v);
  return b;
}

function $getFloat(r: $XdrReader, size: 4 | 8): number {
  const b = r.fixed(size);
  const view = new DataView(b.buffer, b.byteOffset, size);
  return size === 4 ? view.getFloat32(0) : view.getFloat64(0);
}`,
  },
  $string: {
    imports: ['InvalidArgTypeError', 'OutOfRangeError'],
    code: `function $string(v: unknown, at: string, max: number): Uint8Array {
  if (typeof v !== 'string') throw new $InvalidArgTypeError(at, 'of type string', v);
  const bytes = Buffer.from(v, 'utf8');
  if (bytes.length > max) throw new $OutOfRangeError(at, \`at most \${max} bytes long in UTF-8\`, v);
  return bytes;
}`,
  },
  $chars: {
    imports: ['InvalidArgTypeError', 'OutOfRangeError'],
    code: `function $chars(v: unknown, at: string, size: number): string {
  if (typeof v !== 'string') throw new $InvalidArgTypeError(at, 'of type string', v);
  if (Buffer.byteLength(v, 'utf8') >= size) throw new $OutOfRangeError(at, \`shorter than \${size} bytes in UTF-8 (char[\${size}] ends with a NUL)\`, v);
  return v;
}`,
  },
  $bytes: {
    imports: ['InvalidArgTypeError', 'OutOfRangeError'],
    code: `function $bytes(v: unknown, at: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new $InvalidArgTypeError(at, 'an instance of Uint8Array', v);
  if (v.length < min || v.length > max) {
    throw new $OutOfRangeError(\`\${at}.length\`, min === max ? \`exactly \${min}\` : \`at most \${max}\`, v.length);
  }
  return v;
}`,
  },
  $list: {
    imports: ['InvalidArgTypeError', 'OutOfRangeError'],
    code: `function $list<T>(v: readonly T[], at: string, min: number, max: number): readonly T[] {
  if (!Array.isArray(v)) throw new $InvalidArgTypeError(at, 'an array', v);
  if (v.length < min || v.length > max) {
    throw new $OutOfRangeError(\`\${at}.length\`, min === max ? \`exactly \${min}\` : \`at most \${max}\`, v.length);
  }
  return v;
}`,
  },
  $object: {
    imports: ['InvalidArgTypeError'],
    code: `function $object(v: unknown, at: string): void {
  if (typeof v !== 'object' || v === null) throw new $InvalidArgTypeError(at, 'an object', v);
}`,
  },
  $opcode: {
    imports: ['RxAbortError', 'RXGEN_DECODE'],
    code: `function $opcode(r: $XdrReader): number {
  if (r.remaining < 4) throw new $RxAbortError($RXGEN_DECODE, true, 'the request has no opcode');
  return r.i32();
}`,
  },
  $serverErrors: {
    imports: ['RxAbortError', 'RXGEN_SS_MARSHAL', 'RXGEN_SS_UNMARSHAL', 'IncomingCall'],
    code: `/** Aborts a call whose arguments do not decode (RXGEN_SS_UNMARSHAL) or whose results do not encode (RXGEN_SS_MARSHAL). */
function $serverError(err: unknown, code: number, what: string, call: $IncomingCall,
  onError: ((error: Error, call: $IncomingCall, abortCode: number) => void) | undefined): $RxAbortError {
  const error = err instanceof Error ? err : new Error(String(err));
  onError?.(error, call, code);
  return new $RxAbortError(code, true, \`\${what}: \${error.message}\`);
}`,
  },
  $call: {
    imports: ['Client', 'ServiceDestination', 'CallOptions', 'XdrReader'],
    needs: ['$named'],
    code: `async function $call(client: $Client, destination: $ServiceDestination, request: Uint8Array,
  options: $CallOptions | undefined): Promise<$XdrReader> {
  try {
    return new $XdrReader((await client.call(destination, request, options)).data);
  } catch (err) {
    throw $named(err);
  }
}`,
  },
  $stream: {
    imports: ['XdrReader', 'MalformedError', 'OutOfRangeError'],
    code: `/** Bytes of a call's request or reply as they arrive, for split calls. */
class $Stream {
  private chunks: Buffer[] = [];
  private size = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Buffers at least n bytes; false when the data ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.size < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.size += next.value.length;
      }
    }
    return this.size >= n;
  }

  /** Exactly n bytes. */
  async read(n: number, what: string): Promise<Buffer> {
    if (!Number.isInteger(n) || n < 0) throw new $OutOfRangeError('n', 'a whole number of bytes', n);
    if (!(await this.fill(n))) throw new $MalformedError(what, \`needs \${n} bytes, \${this.size} left\`);
    const all = Buffer.concat(this.chunks);
    this.chunks = n < all.length ? [all.subarray(n)] : [];
    this.size -= n;
    return all.subarray(0, n);
  }

  /** Everything up to the end. */
  async rest(): Promise<Buffer> {
    await this.fill(Infinity);
    return this.read(this.size, 'data');
  }

  /** Decodes what comes next, reading more until it decodes or the data ends. */
  async decode<T>(decode: (r: $XdrReader) => T): Promise<T> {
    for (;;) {
      const all = Buffer.concat(this.chunks);
      const r = new $XdrReader(all);
      try {
        const value = decode(r);
        const used = all.length - r.remaining;
        this.chunks = used < all.length ? [all.subarray(used)] : [];
        this.size -= used;
        return value;
      } catch (err) {
        if (!(err instanceof $MalformedError) || this.done) throw err;
        await this.fill(this.size + 1);
      }
    }
  }
}`,
  },
};

class Emitter {
  private readonly used = new Set<string>();
  private readonly imports = new Set<string>(['XdrReader', 'XdrWriter']);
  private readonly typeImports = new Set(['Client', 'ServiceDestination', 'CallOptions', 'Handler', 'IncomingCall', 'ClientCall']);
  private readonly types = new Map<string, TypeModel>();
  private readonly valueNames = new Map<string, string>();
  private readonly topLevel = new Map<string, string>();
  private depth = 0;

  constructor(private readonly model: Model, private readonly options: CodegenOptions) {
    for (const t of model.types) this.types.set(t.name, t);
    for (const c of model.consts) this.valueNames.set(c.name, safe(c.name));
    for (const t of model.types) {
      if (t.kind === 'enum') for (const m of t.members) this.valueNames.set(m.name, safe(m.name));
    }
  }

  private use(helper: string): string {
    if (!this.used.has(helper)) {
      this.used.add(helper);
      const h: Helper | undefined = HELPERS[helper]; // $named is written by named()
      for (const i of h?.imports ?? []) this.imports.add(i);
      for (const n of h?.needs ?? []) this.use(n);
    }
    return helper;
  }

  private imp(name: string): string {
    this.imports.add(name);
    return `$${name}`;
  }

  /** Registers a top-level value name; two definitions that would produce the same name are an error. */
  private claim(name: string, what: string, at: { file: string; line: number; column: number }): string {
    const earlier = this.topLevel.get(name);
    if (earlier) fail(at, `the generated name ${name} (${what}) collides with ${earlier}`);
    this.topLevel.set(name, what);
    return name;
  }

  typeName(name: string): string {
    return safe(name);
  }

  // ---- types

  tsType(s: Shape): string {
    switch (s.k) {
      case 'prim':
        return s.prim === 'int64' || s.prim === 'uint64' ? 'bigint' : s.prim === 'bool' ? 'boolean' : 'number';
      case 'named':
        return this.typeName(s.name);
      case 'string':
      case 'chars':
        return 'string';
      case 'opaque':
      case 'fixedOpaque':
        return 'Uint8Array';
      case 'vector':
      case 'array': {
        const t = this.tsType(s.of);
        return /[| ]/.test(t) ? `(${t})[]` : `${t}[]`;
      }
      case 'optional':
        return `${this.tsType(s.of)} | null`;
    }
  }

  /** A short description of a shape for comments: how it travels. */
  private wire(s: Shape): string {
    switch (s.k) {
      case 'prim':
        return s.prim;
      case 'named':
        return s.name;
      case 'string':
        return s.max === UNBOUNDED ? 'string<>' : `string<${s.max}>`;
      case 'chars':
        return `char[${s.size}]`;
      case 'opaque':
        return s.max === UNBOUNDED ? 'opaque<>' : `opaque<${s.max}>`;
      case 'fixedOpaque':
        return `opaque[${s.size}]`;
      case 'vector':
        return `${this.wire(s.of)}[${s.size}]`;
      case 'array':
        return `${this.wire(s.of)}<${s.max === UNBOUNDED ? '' : s.max}>`;
      case 'optional':
        return `*${this.wire(s.of)}`;
    }
  }

  // ---- encoding and decoding

  /** Statements that encode value `v` (an expression) of shape `s` into writer `w`; `at` is the path for errors. */
  enc(s: Shape, w: string, v: string, at: string, ind: string): string[] {
    switch (s.k) {
      case 'prim': {
        if (s.prim === 'int64' || s.prim === 'uint64') {
          return [`${ind}${w}.${s.prim === 'int64' ? 'i64' : 'u64'}(${this.use('$int64')}(${v}, ${at}, ${s.prim === 'int64'}));`];
        }
        if (s.prim === 'bool') return [`${ind}${w}.bool(${this.use('$boolean')}(${v}, ${at}));`];
        if (s.prim === 'float' || s.prim === 'double') {
          return [`${ind}${w}.fixed(${this.use('$float')}(${v}, ${at}, ${s.prim === 'float' ? 4 : 8}));`];
        }
        const [min, max] = INT_RANGE[s.prim];
        return [`${ind}${w}.${min < 0 ? 'i32' : 'u32'}(${this.use('$int')}(${v}, ${at}, ${min}, ${max}));`];
      }
      case 'named':
        return [`${ind}${this.encoder(s.name)}(${w}, ${v}, ${at});`];
      case 'string':
        return [`${ind}${w}.opaque(${this.use('$string')}(${v}, ${at}, ${s.max}));`];
      case 'chars':
        return [`${ind}${w}.chars(${this.use('$chars')}(${v}, ${at}, ${s.size}), ${s.size});`];
      case 'opaque':
        return [`${ind}${w}.opaque(${this.use('$bytes')}(${v}, ${at}, 0, ${s.max}));`];
      case 'fixedOpaque':
        return [`${ind}${w}.fixed(${this.use('$bytes')}(${v}, ${at}, ${s.size}, ${s.size}));`];
      case 'vector':
      case 'array': {
        const d = this.depth++;
        const [i, x, l] = [`$i${d}`, `$x${d}`, `$l${d}`];
        const min = s.k === 'vector' ? s.size : 0;
        const max = s.k === 'vector' ? s.size : s.max;
        const lines = [`${ind}{`, `${ind}  const ${l} = ${this.use('$list')}(${v}, ${at}, ${min}, ${max});`];
        if (s.k === 'array') lines.push(`${ind}  ${w}.u32(${l}.length);`);
        lines.push(`${ind}  for (const [${i}, ${x}] of ${l}.entries()) {`);
        lines.push(...this.enc(s.of, w, x, `${at} + '[' + ${i} + ']'`, `${ind}    `));
        lines.push(`${ind}  }`, `${ind}}`);
        this.depth--;
        return lines;
      }
      case 'optional':
        return [
          `${ind}if (${v} === null || ${v} === undefined) {`,
          `${ind}  ${w}.bool(false);`,
          `${ind}} else {`,
          `${ind}  ${w}.bool(true);`,
          ...this.enc(s.of, w, v, at, `${ind}  `),
          `${ind}}`,
        ];
    }
  }

  /** An expression that decodes a value of shape `s` from reader `r`. */
  dec(s: Shape, r: string): string {
    switch (s.k) {
      case 'prim':
        switch (s.prim) {
          case 'int32':
            return `${r}.i32()`;
          case 'uint32':
            return `${r}.u32()`;
          case 'int64':
            return `${r}.i64()`;
          case 'uint64':
            return `${r}.u64()`;
          case 'bool':
            return `${r}.bool()`;
          // rxgen keeps the low bits of the XDR int, as C's conversion does.
          case 'char':
            return `(${r}.i32() << 24 >> 24)`;
          case 'uchar':
            return `(${r}.u32() & 0xff)`;
          case 'short':
            return `(${r}.i32() << 16 >> 16)`;
          case 'ushort':
            return `(${r}.u32() & 0xffff)`;
          case 'float':
          case 'double':
            this.use('$float');
            return `$getFloat(${r}, ${s.prim === 'float' ? 4 : 8})`;
        }
        break;
      case 'named':
        return `${this.decoder(s.name)}(${r})`;
      case 'string':
        return `${r}.string(${s.max})`;
      case 'chars':
        return `${r}.chars(${s.size})`;
      case 'opaque':
        return `${r}.opaque(${s.max})`;
      case 'fixedOpaque':
        return `${r}.fixed(${s.size})`;
      case 'vector':
        return `Array.from({ length: ${s.size} }, () => ${this.dec(s.of, r)})`;
      case 'array':
        return `${r}.array(() => ${this.dec(s.of, r)}, ${s.max})`;
      case 'optional':
        return `(${r}.bool() ? ${this.dec(s.of, r)} : null)`;
    }
  }

  encoder(name: string): string {
    return `encode_${this.typeName(name)}`;
  }

  decoder(name: string): string {
    return `decode_${this.typeName(name)}`;
  }

  // ---- definitions

  private constants(): string[] {
    const out: string[] = [];
    for (const c of this.model.consts) {
      const name = this.claim(safe(c.name), `const ${c.name}`, c.at);
      let text: string;
      if (typeof c.value === 'string') text = JSON.stringify(c.value);
      else if (c.hex) text = c.value < 0 ? `-0x${(-c.value).toString(16)}` : `0x${c.value.toString(16)}`;
      else text = String(c.value);
      out.push(`export const ${name} = ${text};`);
    }
    return out;
  }

  private typeDecl(t: TypeModel): string[] {
    const name = this.typeName(t.name);
    switch (t.kind) {
      case 'struct':
        return [
          `export interface ${name} {`,
          ...t.fields.map((f) => `  ${f.name}: ${this.tsType(f.shape)};${this.comment(f.shape)}`),
          '}',
        ];
      case 'typedef':
        return [`export type ${name} = ${this.tsType(t.shape)};${this.comment(t.shape)}`];
      case 'enum':
        return [
          `/** enum ${t.name}: ${t.members.map((m) => m.name).join(', ')}. */`,
          `export type ${name} = number;`,
          ...t.members.map((m) => `export const ${this.claim(safe(m.name), `enum member ${m.name}`, t.at)} = ${m.value};`),
        ];
      case 'union': {
        const d = t.discriminant.name;
        const arm = (label: string, field: Field | undefined) =>
          `  | { ${d}: ${label}${field ? `; ${field.name}: ${this.tsType(field.shape)}` : ''} }`;
        const lines = [`export type ${name} =`];
        for (const a of t.arms) lines.push(arm(this.label(t, a, true), a.field));
        if (t.default) lines.push(arm(t.bool ? 'boolean' : 'number', t.default.field));
        lines[lines.length - 1] += ';';
        return lines;
      }
    }
  }

  /** A union's discriminant value in the output: a literal, or the constant the case names. */
  private label(t: Extract<TypeModel, { kind: 'union' }>, arm: UnionArm, asType = false): string {
    // The codec functions' own parameters (w, v, at, r) would hide constants of those names.
    const name = arm.label && (this.valueNames.get(arm.label) ?? safe(arm.label));
    if (name && !['w', 'v', 'at', 'r'].includes(name)) return `${asType ? 'typeof ' : ''}${name}`;
    return t.bool ? (arm.value ? 'true' : 'false') : String(arm.value);
  }

  private comment(s: Shape): string {
    const wire = this.wire(s);
    return wire === this.tsType(s) ? '' : ` // ${wire}`;
  }

  private codec(t: TypeModel): string[] {
    const name = this.typeName(t.name);
    const enc = this.claim(this.encoder(t.name), `encoder of ${t.name}`, t.at);
    const dec = this.claim(this.decoder(t.name), `decoder of ${t.name}`, t.at);
    const head = `export function ${enc}(w: $XdrWriter, v: ${name}, at = '${t.name}'): void {`;
    const dhead = `export function ${dec}(r: $XdrReader): ${name} {`;
    switch (t.kind) {
      case 'struct':
        return [
          head,
          `  ${this.use('$object')}(v, at);`,
          ...t.fields.flatMap((f) => this.enc(f.shape, 'w', `v.${f.name}`, `at + '.${f.name}'`, '  ')),
          '}',
          '',
          dhead,
          '  return {',
          ...t.fields.map((f) => `    ${f.name}: ${this.dec(f.shape, 'r')},`),
          '  };',
          '}',
        ];
      case 'typedef':
        return [head, ...this.enc(t.shape, 'w', 'v', 'at', '  '), '}', '', dhead, `  return ${this.dec(t.shape, 'r')};`, '}'];
      case 'enum':
        return [
          head, `  w.i32(${this.use('$int')}(v, at, -2147483648, 2147483647));`, '}', '',
          dhead, '  return r.i32();', '}',
        ];
      case 'union': {
        const d = t.discriminant.name;
        const lines = [head, `  ${this.use('$object')}(v, at);`];
        lines.push(...this.enc(t.discriminant.shape, 'w', `v.${d}`, `at + '.${d}'`, '  '));
        lines.push(`  switch (v.${d}) {`);
        for (const a of t.arms) {
          const label = this.label(t, a);
          if (!a.field) {
            lines.push(`    case ${label}:`, '      break;');
            continue;
          }
          lines.push(`    case ${label}: {`);
          lines.push(`      const $arm = v as Extract<${name}, { ${d}: ${this.label(t, a, true)} }>;`);
          lines.push(...this.enc(a.field.shape, 'w', `$arm.${a.field.name}`, `at + '.${a.field.name}'`, '      '));
          lines.push('      break;', '    }');
        }
        const labels = t.arms.map((a) => this.label(t, a));
        if (t.default) {
          const f = t.default.field;
          lines.push('    default: {');
          if (f) {
            const excluded = t.arms.map((a) => `{ ${d}: ${this.label(t, a, true)} }`).join(' | ') || 'never';
            lines.push(`      const $arm = v as Exclude<${name}, ${excluded}>;`);
            lines.push(...this.enc(f.shape, 'w', `$arm.${f.name}`, `at + '.${f.name}'`, '      '));
          }
          lines.push('      break;', '    }');
        } else {
          this.imp('OutOfRangeError');
          lines.push('    default:');
          lines.push(`      throw new $OutOfRangeError(at + '.${d}', ${JSON.stringify(`one of ${labels.join(', ')}`)}, (v as { ${d}: unknown }).${d});`);
        }
        lines.push('  }', '}', '');
        lines.push(dhead, `  const $d = ${this.dec(t.discriminant.shape, 'r')};`, '  switch ($d) {');
        for (const a of t.arms) {
          const label = this.label(t, a);
          lines.push(`    case ${label}:`);
          lines.push(`      return { ${d}: ${label}${a.field ? `, ${a.field.name}: ${this.dec(a.field.shape, 'r')}` : ''} };`);
        }
        if (t.default) {
          const f = t.default.field;
          lines.push('    default:', `      return { ${d}: $d${f ? `, ${f.name}: ${this.dec(f.shape, 'r')}` : ''} };`);
        } else {
          this.imp('MalformedError');
          lines.push('    default:', `      throw new $MalformedError('XDR', \`union ${t.name} has no arm for ${d} = \${$d}\`);`);
        }
        lines.push('  }', '}');
        return lines;
      }
    }
  }

  /** The built-in afsUUID (rx/xdr_afsuuid.c): u32, two u16 and two chars as XDR ints, six chars as XDR ints. */
  private uuid(): string[] {
    this.claim('encode_afsUUID', 'encoder of afsUUID', { file: this.options.source, line: 1, column: 1 });
    this.claim('decode_afsUUID', 'decoder of afsUUID', { file: this.options.source, line: 1, column: 1 });
    this.use('$int');
    this.use('$object');
    this.use('$list');
    return [
      '/** The AFS UUID (afsUUID); node and the clock_seq fields are bytes (0-255). */',
      'export interface afsUUID {',
      '  time_low: number; // u32',
      '  time_mid: number; // u16',
      '  time_hi_and_version: number; // u16',
      '  clock_seq_hi_and_reserved: number; // char',
      '  clock_seq_low: number; // char',
      '  node: number[]; // char[6]',
      '}',
      '',
      "export function encode_afsUUID(w: $XdrWriter, v: afsUUID, at = 'afsUUID'): void {",
      '  $object(v, at);',
      "  w.u32($int(v.time_low, at + '.time_low', 0, 4294967295));",
      "  w.u32($int(v.time_mid, at + '.time_mid', 0, 65535));",
      "  w.u32($int(v.time_hi_and_version, at + '.time_hi_and_version', 0, 65535));",
      '  // Chars travel sign-extended, as OpenAFS encodes them.',
      "  w.i32($int(v.clock_seq_hi_and_reserved, at + '.clock_seq_hi_and_reserved', 0, 255) << 24 >> 24);",
      "  w.i32($int(v.clock_seq_low, at + '.clock_seq_low', 0, 255) << 24 >> 24);",
      "  for (const [i, b] of $list(v.node, at + '.node', 6, 6).entries()) w.i32($int(b, at + '.node[' + i + ']', 0, 255) << 24 >> 24);",
      '}',
      '',
      'export function decode_afsUUID(r: $XdrReader): afsUUID {',
      '  return {',
      '    time_low: r.u32(),',
      '    time_mid: r.u32() & 0xffff,',
      '    time_hi_and_version: r.u32() & 0xffff,',
      '    clock_seq_hi_and_reserved: r.i32() & 0xff,',
      '    clock_seq_low: r.i32() & 0xff,',
      '    node: Array.from({ length: 6 }, () => r.i32() & 0xff),',
      '  };',
      '}',
    ];
  }

  // ---- error tables

  private errorTables(): string[] {
    const out: string[] = [];
    for (const table of this.model.errorTables) {
      out.push(`// Error table ${table.name} (${table.at.file}), codes from ${table.base}.`);
      for (const c of table.codes) out.push(`export const ${this.claim(safe(c.name), `error code ${c.name}`, c.at)} = ${c.code};`);
      const name = this.claim(`${safe(table.name)}_errorTable`, `error table ${table.name}`, table.at);
      out.push('', `/** The abort codes of error table ${table.name}: code -> name and message. */`);
      out.push(`export const ${name}: ReadonlyMap<number, { name: string; message: string }> = new Map([`);
      for (const c of table.codes) out.push(`  [${c.code}, { name: ${JSON.stringify(c.name)}, message: ${JSON.stringify(c.message)} }],`);
      out.push(']);', '');
    }
    return out;
  }

  private named(): string {
    const tables = this.model.errorTables;
    if (tables.length === 0) return `function $named(err: unknown): unknown {
  return err;
}`;
    this.imp('RxAbortError');
    const maps = tables.map((t: ErrorTable) => `${safe(t.name)}_errorTable`);
    return `/** Gives an abort code from this interface's error tables its name on the RxAbortError. */
function $named(err: unknown): unknown {
  if (err instanceof $RxAbortError && err.abortName === undefined) {
    const entry = ${maps.map((m) => `${m}.get(err.abortCode)`).join(' ?? ')};
    if (entry) {
      Object.defineProperty(err, 'abortName', { value: entry.name, enumerable: true, configurable: true });
      err.message = err.message.replace(\`code \${err.abortCode}\`, \`code \${err.abortCode} (\${entry.name})\`);
    }
  }
  return err;
}`;
  }

  // ---- packages

  /** A parameter's name as a TypeScript binding. */
  private param(p: ParamModel): string {
    const n = safe(p.name);
    return ['client', 'destination', 'options', 'call', 'impl'].includes(n) || this.topLevel.has(n) ? `${n}_` : n;
  }

  private ins(proc: ProcModel): ParamModel[] {
    return proc.params.filter((p) => p.direction !== 'OUT');
  }

  private outs(proc: ProcModel): ParamModel[] {
    return proc.params.filter((p) => p.direction !== 'IN');
  }

  private outType(pkg: PackageModel, proc: ProcModel): string {
    return this.outs(proc).length ? `${pkg.prefix}${proc.name}_Out` : 'void';
  }

  private pkgCode(pkg: PackageModel): string[] {
    const P = pkg.prefix;
    const out: string[] = [`// Package ${P}`];
    const at = pkg.at;
    const opcodes = pkg.procs.map((p) => p.opcode);
    if (pkg.statIndex !== undefined) out.push(`export const ${this.claim(`${P}STATINDEX`, 'statindex', at)} = ${pkg.statIndex};`);
    if (pkg.procs.length) {
      out.push(`export const ${this.claim(`${P}LOWEST_OPCODE`, 'opcode range', at)} = ${Math.min(...opcodes)};`);
      out.push(`export const ${this.claim(`${P}HIGHEST_OPCODE`, 'opcode range', at)} = ${Math.max(...opcodes)};`);
    }
    out.push(`export const ${this.claim(`${P}NUMBER_OPCODES`, 'opcode count', at)} = ${pkg.procs.length};`);
    out.push('', `/** The opcode of each procedure of ${P}. */`);
    out.push(`export const ${this.claim(`${P}OPCODES`, 'opcode table', at)} = {`);
    for (const p of pkg.procs) out.push(`  ${p.name}: ${p.opcode},`);
    out.push('} as const;', '');
    out.push(`/** The name of a procedure of ${P} from its opcode (rxgen's TranslateOpCode). */`);
    out.push(`export function ${this.claim(`${P}TranslateOpCode`, 'opcode names', at)}(op: number): string | undefined {`);
    out.push('  switch (op) {');
    for (const p of pkg.procs) out.push(`    case ${p.opcode}:`, `      return '${P}${p.name}';`);
    out.push('  }', '  return undefined;', '}', '');

    for (const proc of pkg.procs) {
      const outs = this.outs(proc);
      if (outs.length) {
        out.push(`/** What ${P}${proc.name} returns: its OUT and INOUT parameters. */`);
        out.push(`export interface ${this.claim(`${P}${proc.name}_Out`, `results of ${proc.name}`, proc.at)} {`);
        for (const p of outs) out.push(`  ${p.name}: ${this.tsType(p.shape)};${this.comment(p.shape)}`);
        out.push('}', '');
      }
    }
    for (const proc of pkg.procs) out.push(...(proc.split ? this.splitClient(pkg, proc) : this.client(pkg, proc)), '');
    // A package without procedures has nothing to serve.
    if (pkg.procs.length) out.push(...this.server(pkg));
    return out;
  }

  private signature(proc: ProcModel): string {
    return this.ins(proc).map((p) => `${this.param(p)}: ${this.tsType(p.shape)}, `).join('');
  }

  private describeProc(pkg: PackageModel, proc: ProcModel): string {
    const list = (dir: string) => proc.params.filter((p) => p.direction === dir).map((p) => `${p.name} (${this.wire(p.shape)})`).join(', ');
    const parts = ['IN', 'INOUT', 'OUT'].map((d) => [d, list(d)]).filter(([, l]) => l).map(([d, l]) => `${d} ${l}`);
    return `${pkg.prefix}${proc.name}, opcode ${proc.opcode}${parts.length ? `: ${parts.join('; ')}` : ''}`;
  }

  private encodeIns(proc: ProcModel, ind: string): string[] {
    return this.ins(proc).flatMap((p) => this.enc(p.shape, '$w', this.param(p), `'${p.name}'`, ind));
  }

  private decodeOuts(pkg: PackageModel, proc: ProcModel, ind: string): string[] {
    const outs = this.outs(proc);
    if (!outs.length) return [`${ind}$r.end();`];
    return [
      `${ind}const $out: ${this.outType(pkg, proc)} = {`,
      ...outs.map((p) => `${ind}  ${p.name}: ${this.dec(p.shape, '$r')},`),
      `${ind}};`,
      `${ind}$r.end();`,
      `${ind}return $out;`,
    ];
  }

  private client(pkg: PackageModel, proc: ProcModel): string[] {
    const name = this.claim(`${pkg.prefix}${proc.name}`, `client of ${proc.name}`, proc.at);
    this.use('$call');
    return [
      `/**`,
      ` * ${this.describeProc(pkg, proc)}.`,
      ` * Rejects with RxAbortError when the call is aborted, MalformedError when the reply does not decode.`,
      ` */`,
      `export async function ${name}(client: $Client, destination: $ServiceDestination, ${this.signature(proc)}` +
        `options?: $CallOptions): Promise<${this.outType(pkg, proc)}> {`,
      `  const $w = new $XdrWriter().i32(${proc.opcode});`,
      ...this.encodeIns(proc, '  '),
      '  const $r = await $call(client, destination, $w.toBuffer(), options);',
      ...this.decodeOuts(pkg, proc, '  '),
      '}',
    ];
  }

  private splitClass(pkg: PackageModel): string {
    return `${pkg.prefix}SplitCall`;
  }

  private splitClient(pkg: PackageModel, proc: ProcModel): string[] {
    const cls = this.splitClass(pkg);
    const start = this.claim(`${proc.splitPrefix.start}${pkg.prefix}${proc.name}`, `start of split ${proc.name}`, proc.at);
    const end = this.claim(`${proc.splitPrefix.end}${pkg.prefix}${proc.name}`, `end of split ${proc.name}`, proc.at);
    this.use('$named');
    return [
      `/**`,
      ` * ${this.describeProc(pkg, proc)} (split).`,
      ` * Starts the call and sends the IN parameters; write() sends the data that follows, read() reads the data`,
      ` * the reply starts with, and ${end}() reads the OUT parameters that end it.`,
      ` */`,
      `export async function ${start}(client: $Client, destination: $ServiceDestination, ${this.signature(proc)}` +
        `options?: $CallOptions): Promise<${cls}<'${proc.name}'>> {`,
      `  const $w = new $XdrWriter().i32(${proc.opcode});`,
      ...this.encodeIns(proc, '  '),
      `  const $split = new ${cls}(client.openCall(destination, options), '${proc.name}');`,
      '  await $split.write($w.toBuffer());',
      '  return $split;',
      '}',
      '',
      `/** Ends ${pkg.prefix}${proc.name}: ends the request if it is still open, reads the rest of the reply and decodes the OUT parameters. */`,
      `export async function ${end}($split: ${cls}<'${proc.name}'>): Promise<${this.outType(pkg, proc)}> {`,
      '  const $r = await $split.finish();',
      ...this.decodeOuts(pkg, proc, '  '),
      '}',
    ];
  }

  private splitClasses(pkg: PackageModel): string[] {
    this.use('$stream');
    this.use('$named');
    this.imp('XdrReader');
    const cls = this.claim(this.splitClass(pkg), 'split call class', pkg.at);
    const server = this.claim(`${pkg.prefix}SplitServerCall`, 'split server call class', pkg.at);
    return [
      `/** A split call of ${pkg.prefix} in progress, on the client: the data between the arguments and the results. */`,
      `export class ${cls}<P extends string> {`,
      '  private readonly reply: $Stream;',
      '  private requestEnded = false;',
      '  constructor(readonly call: $ClientCall, readonly procedure: P) {',
      '    this.reply = new $Stream(call[Symbol.asyncIterator]());',
      '  }',
      '',
      '  /** Sends more of the request. */',
      '  async write(chunk: Uint8Array): Promise<void> {',
      '    try {',
      '      await this.call.write(chunk);',
      '    } catch (err) {',
      '      throw $named(err);',
      '    }',
      '  }',
      '',
      '  /** Ends the request (reading the reply does it too). */',
      '  async endRequest(): Promise<void> {',
      '    if (this.requestEnded) return;',
      '    this.requestEnded = true;',
      '    try {',
      '      await this.call.end();',
      '    } catch (err) {',
      '      throw $named(err);',
      '    }',
      '  }',
      '',
      '  /** Exactly n bytes of the reply; rejects with MalformedError if the reply ends first. */',
      '  async read(n: number): Promise<Buffer> {',
      '    await this.endRequest();',
      '    try {',
      '      return await this.reply.read(n, `${String(this.procedure)} reply`);',
      '    } catch (err) {',
      '      throw $named(err);',
      '    }',
      '  }',
      '',
      '  /** Aborts the call. */',
      '  abort(code?: number): void {',
      '    this.call.abort(code);',
      '  }',
      '',
      '  /** @internal The rest of the reply, once the call has completed. */',
      '  async finish(): Promise<$XdrReader> {',
      '    await this.endRequest();',
      '    try {',
      '      const rest = await this.reply.rest();',
      '      await this.call.result;',
      '      return new $XdrReader(rest);',
      '    } catch (err) {',
      '      throw $named(err);',
      '    }',
      '  }',
      '}',
      '',
      `/** A split call of ${pkg.prefix} in progress, on the server: read() takes the data after the arguments, write() sends data before the results. */`,
      `export class ${server} {`,
      '  /** @internal */',
      '  constructor(readonly call: $IncomingCall, private readonly request: $Stream) {}',
      '',
      '  get service(): number {',
      '    return this.call.service;',
      '  }',
      '',
      '  get signal(): AbortSignal {',
      '    return this.call.signal;',
      '  }',
      '',
      '  /** Exactly n bytes of the request; rejects with MalformedError if the request ends first. */',
      '  read(n: number): Promise<Buffer> {',
      "    return this.request.read(n, 'request');",
      '  }',
      '',
      '  /** The rest of the request. */',
      '  rest(): Promise<Buffer> {',
      '    return this.request.rest();',
      '  }',
      '',
      '  /** Sends part of the reply (the results follow when the handler returns). */',
      '  write(chunk: Uint8Array): Promise<void> {',
      '    return this.call.write(chunk);',
      '  }',
      '}',
    ];
  }

  private server(pkg: PackageModel): string[] {
    const P = pkg.prefix;
    const iface = this.claim(`${pkg.serverPrefix}${P}Handlers`, 'handler interface', pkg.at);
    const opts = this.claim(`${P}HandlerOptions`, 'handler options', pkg.at);
    const factory = this.claim(`${P}handler`, 'handler factory', pkg.at);
    const anySplit = pkg.procs.some((p) => p.split);
    const out: string[] = [];
    if (anySplit) out.push(...this.splitClasses(pkg), '');
    out.push(`/** The procedures of ${P}, as a server implements them: IN and INOUT parameters in, OUT and INOUT parameters out. */`);
    out.push(`export interface ${iface} {`);
    for (const proc of pkg.procs) {
      const callType = proc.split ? `${P}SplitServerCall` : '$IncomingCall';
      const r = this.outType(pkg, proc);
      out.push(`  /** ${this.describeProc(pkg, proc)}. */`);
      out.push(`  ${proc.name}(${this.signature(proc)}call: ${callType}): ${r} | Promise<${r}>;`);
    }
    out.push('}', '');
    out.push(`export interface ${opts} {`);
    out.push('  /** Told of requests that do not decode (the call is aborted with RXGEN_SS_UNMARSHAL) and results that do not encode (RXGEN_SS_MARSHAL). */');
    out.push('  onError?: (error: Error, call: $IncomingCall, abortCode: number) => void;');
    out.push('}', '');
    this.use('$serverErrors');
    this.imp('RXGEN_OPCODE');
    this.imp('RxAbortError');
    out.push(
      '/**',
      ` * A Server handler for ${P}: reads the opcode, decodes the IN parameters, calls the implementation and`,
      ' * encodes its results. Unknown opcodes and procedures \`impl\` lacks are aborted with RXGEN_OPCODE, requests',
      ' * that do not decode with RXGEN_SS_UNMARSHAL; an RxAbortError thrown by the implementation aborts with its code.',
      ' */',
      `export function ${factory}(impl: Partial<${iface}>, options: ${opts} = {}): $Handler {`,
      '  return async (call) => {',
    );
    if (anySplit) {
      this.use('$stream');
      this.imp('RXGEN_DECODE');
      out.push('    const $s = new $Stream(call[Symbol.asyncIterator]());');
      out.push("    if (!(await $s.fill(4))) throw new $RxAbortError($RXGEN_DECODE, true, 'the request has no opcode');");
      out.push("    const $head = await $s.read(4, 'opcode');");
      out.push('    const $op = $head.readInt32BE(0);');
    } else {
      this.use('$opcode');
      out.push('    const $r = new $XdrReader(await call.request());');
      out.push('    const $op = $opcode($r);');
    }
    out.push('    switch ($op) {');
    for (const proc of pkg.procs) out.push(...this.serverCase(pkg, proc, anySplit));
    out.push('    }');
    out.push(`    throw new $RxAbortError($RXGEN_OPCODE, true, \`opcode \${$op} is not served by ${P}\`);`);
    out.push('  };', '}');
    return out;
  }

  private serverCase(pkg: PackageModel, proc: ProcModel, streamed: boolean): string[] {
    const ins = this.ins(proc);
    const what = `${pkg.prefix}${proc.name}`;
    const out = [`      case ${proc.opcode}: {`, `        if (!impl.${proc.name}) break;`];
    const decls = ins.map((p) => `${this.param(p)}: ${this.tsType(p.shape)}`);
    if (decls.length) out.push(`        let ${decls.join(', ')};`);
    out.push('        try {');
    if (proc.split) {
      const names = ins.map((p) => this.param(p));
      if (names.length) {
        out.push(`          [${names.join(', ')}] = await $s.decode(($r) => [${ins.map((p) => this.dec(p.shape, '$r')).join(', ')}] as const);`);
      }
    } else {
      if (streamed) {
        // Read past the opcode again, so that offsets in messages count from the start of the request.
        out.push('          const $r = new $XdrReader(Buffer.concat([$head, await $s.rest()]));', '          $r.i32();');
      }
      for (const p of ins) out.push(`          ${this.param(p)} = ${this.dec(p.shape, '$r')};`);
      out.push('          $r.end();');
    }
    out.push('        } catch (err) {');
    out.push(`          throw $serverError(err, $RXGEN_SS_UNMARSHAL, '${what} arguments', call, options.onError);`);
    out.push('        }');
    const callArg = proc.split ? `new ${pkg.prefix}SplitServerCall(call, $s)` : 'call';
    const args = [...ins.map((p) => this.param(p)), callArg].join(', ');
    const outs = this.outs(proc);
    if (outs.length) out.push(`        const $out = await impl.${proc.name}(${args});`);
    else out.push(`        await impl.${proc.name}(${args});`);
    out.push('        const $w = new $XdrWriter();');
    if (outs.length) {
      out.push('        try {');
      out.push(`          $object($out, '${what} results');`);
      this.use('$object');
      for (const p of outs) out.push(...this.enc(p.shape, '$w', `$out.${p.name}`, `'${p.name}'`, '          '));
      out.push('        } catch (err) {');
      out.push(`          throw $serverError(err, $RXGEN_SS_MARSHAL, '${what} results', call, options.onError);`);
      out.push('        }');
    }
    out.push('        return $w.toBuffer();', '      }');
    return out;
  }

  // ---- the file

  emit(): string {
    const body: string[] = [];
    const consts = this.constants();
    if (consts.length) body.push(...consts, '');
    if (this.model.builtins.has('afsUUID')) body.push(...this.uuid(), '');
    const types = [...this.model.types];
    if (this.model.builtins.has('afs_time64')) {
      // struct afs_time64 (rx/xdr.c): 100 ns ticks since the Unix epoch.
      const at = { file: this.options.source, line: 1, column: 1 };
      types.unshift({ kind: 'struct', name: 'afs_time64', at, fields: [{ name: 'ticks', shape: { k: 'prim', prim: 'int64' }, at }] });
    }
    for (const t of types) body.push(...this.typeDecl(t), '');
    for (const t of types) body.push(...this.codec(t), '');
    body.push(...this.errorTables());
    // Client and server code refers to parameters by name: keep them clear of top-level names.
    for (const pkg of this.model.packages) body.push(...this.pkgCode(pkg), '');
    const helpers: string[] = [];
    if (this.used.has('$named')) helpers.push(this.named(), '');
    for (const h of Object.keys(HELPERS)) if (this.used.has(h)) helpers.push(HELPERS[h].code, '');
    for (const h of this.used) for (const i of HELPERS[h]?.imports ?? []) this.imports.add(i);
    const text = [...body, ...helpers].join('\n');
    const mentions = (i: string) => new RegExp(`\\$${i}\\b`).test(text);
    const values = [...this.imports].filter((i) => !this.typeImports.has(i) && mentions(i)).sort();
    const typeList = [...this.typeImports].filter(mentions).sort();
    const head = [
      `// Generated from ${this.options.source} by rxrpc's rxgen generator. Do not edit: change the interface and generate again.`,
    ];
    if (values.length) head.push(`import { ${values.map((v) => `${v} as $${v}`).join(', ')} } from ${JSON.stringify(this.options.importFrom)};`);
    if (typeList.length) head.push(`import type { ${typeList.map((v) => `${v} as $${v}`).join(', ')} } from ${JSON.stringify(this.options.importFrom)};`);
    return `${head.join('\n')}\n\n${text.replace(/\n+$/, '')}\n`;
  }
}

export function emitTypeScript(model: Model, options: CodegenOptions): string {
  return new Emitter(model, options).emit();
}
