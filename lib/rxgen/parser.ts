/**
 * The parser of rxgen's interface language, following OpenAFS's rpc_parse.c:
 * the same definitions, the same keywords, the same rules (opcodes numbered
 * automatically once one is omitted, a parameter without IN/OUT/INOUT keeps
 * the direction of the one before it, also across procedures).
 */
import {
  Declaration, Definition, Direction, EnumMember, InterfaceFile, Package, Param, Proc, TypeSpec, UnionCase, ValueRef,
} from './ast';
import { fail, Position } from './errors';
import { Token } from './lexer';
import { Preprocessor, SourceOptions } from './preprocess';

const KEYWORDS = new Set([
  'const', 'union', 'switch', 'case', 'default', 'struct', 'typedef', 'enum', 'opaque', 'bool', 'void', 'char', 'int',
  'unsigned', 'short', 'afs_int32', 'float', 'double', 'string', 'package', 'prefix', 'statindex', 'special',
  'startingopcode', 'customized', 'proc', 'splitprefix', 'split', 'multi', 'IN', 'OUT', 'INOUT', 'afsUUID',
]);

type DeclKind = 'struct' | 'union' | 'typedef' | 'special' | 'param' | 'IN' | 'OUT' | 'INOUT';

function describe(t: Token): string {
  let what: string;
  if (t.kind === 'eof') what = 'end of file';
  else if (t.kind === 'string') what = `"${t.text}"`;
  else if (t.kind === 'ident' && KEYWORDS.has(t.text)) what = `keyword '${t.text}'`;
  else what = `'${t.text}'`;
  return t.macro ? `${what} (from macro ${t.macro.name}, defined at ${t.macro.defined.file}:${t.macro.defined.line})` : what;
}

/** A number as C reads it: decimal, 0x hex, 0 octal, with an optional minus. */
export function parseNumber(text: string): number {
  const negative = text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  let value: number;
  if (/^0[xX]/.test(digits)) value = parseInt(digits.slice(2), 16);
  else if (digits.length > 1 && digits.startsWith('0')) value = parseInt(digits, 8);
  else value = parseInt(digits, 10);
  return negative ? -value : value;
}

export class Parser {
  private readonly pp: Preprocessor;
  private pushed: Token | undefined;
  private readonly definitions: Definition[] = [];
  private readonly packages: Package[] = [];
  private pkg: Package | undefined;
  /** Opcodes may no longer be given in this package (one was numbered automatically, or startingopcode). */
  private autoOnly = false;
  /** The next automatic opcode; shared by all packages, as in rxgen. */
  private nextOpcode: number | undefined;
  private serverPrefix = '';
  private splitStart = 'Start';
  private splitEnd = 'End';
  private lastDirection: Direction | undefined;

  constructor(source: string, file: string, options: SourceOptions) {
    this.pp = new Preprocessor(source, file, options);
  }

  parse(): InterfaceFile {
    for (;;) {
      const t = this.get();
      if (t.kind === 'eof') break;
      this.definition(t);
    }
    return {
      definitions: this.definitions, packages: this.packages, errorTables: this.pp.errorTables, files: this.pp.files,
      passDefines: this.pp.passDefines,
    };
  }

  private get(): Token {
    if (this.pushed) {
      const t = this.pushed;
      this.pushed = undefined;
      return t;
    }
    return this.pp.next();
  }

  private peek(): Token {
    this.pushed ??= this.pp.next();
    return this.pushed;
  }

  private isPunct(t: Token, c: string): boolean {
    return t.kind === 'punct' && t.text === c;
  }

  private isWord(t: Token, w: string): boolean {
    return t.kind === 'ident' && t.text === w;
  }

  private expectPunct(c: string, context: string): Token {
    const t = this.get();
    if (!this.isPunct(t, c)) fail(t, `expected '${c}' ${context}, found ${describe(t)}`);
    return t;
  }

  private peekPunct(c: string): boolean {
    if (this.isPunct(this.peek(), c)) {
      this.get();
      return true;
    }
    return false;
  }

  /** A name: an identifier that is not a keyword. */
  private name(what: string): Token {
    const t = this.get();
    if (t.kind !== 'ident' || KEYWORDS.has(t.text)) fail(t, `expected ${what}, found ${describe(t)}`);
    return t;
  }

  /** A number or the name of a constant (rxgen's scan_num). */
  private value(what: string): ValueRef {
    const t = this.get();
    if (t.kind === 'number') return { kind: 'number', text: t.text, at: t };
    if (t.kind === 'ident' && !KEYWORDS.has(t.text)) return { kind: 'ident', text: t.text, at: t };
    return fail(t, `expected ${what} (a number or a constant's name), found ${describe(t)}`);
  }

  /** A literal number made of digits only, as rxgen requires for opcodes and statindex. */
  private digits(what: string): { value: number; at: Position } {
    const t = this.get();
    if (t.kind !== 'number' || !/^[0-9]+$/.test(t.text)) fail(t, `expected ${what} (a decimal number), found ${describe(t)}`);
    return { value: parseInt(t.text, 10), at: t };
  }

  private definition(t: Token): void {
    if (t.kind === 'ident') {
      switch (t.text) {
        case 'struct':
          this.push(this.struct());
          return;
        case 'customized': {
          const s = this.get();
          if (!this.isWord(s, 'struct')) fail(s, `expected 'struct' after 'customized', found ${describe(s)}`);
          this.push(this.struct());
          return;
        }
        case 'union':
          this.push(this.union());
          return;
        case 'typedef': {
          const decl = this.declaration('typedef');
          this.push({ kind: 'typedef', name: decl.name, decl, at: t });
          return;
        }
        case 'enum':
          this.push(this.enum());
          return;
        case 'const': {
          const name = this.name('the constant\'s name');
          this.expectPunct('=', `after const ${name.text}`);
          const v = this.get();
          let value: ValueRef;
          if (v.kind === 'string') value = { kind: 'string', text: v.text, at: v };
          else if (v.kind === 'number' || (v.kind === 'ident' && !KEYWORDS.has(v.text))) value = { kind: v.kind, text: v.text, at: v };
          else return fail(v, `expected a number, a constant's name or a string for const ${name.text}, found ${describe(v)}`);
          this.push({ kind: 'const', name: name.text, value, at: name });
          return;
        }
        case 'package': {
          const name = this.name('the package prefix');
          this.pkg = { prefix: name.text, procs: [], at: t };
          this.packages.push(this.pkg);
          this.autoOnly = false;
          return;
        }
        case 'prefix':
          this.serverPrefix = this.name('the server prefix').text;
          return;
        case 'statindex': {
          const n = this.digits('the statistics index');
          if (!this.pkg) fail(t, "'statindex' must follow a 'package' statement");
          if (this.pkg.statIndex !== undefined) fail(t, `package ${this.pkg.prefix} already has a statindex (${this.pkg.statIndex})`);
          this.pkg.statIndex = n.value;
          return;
        }
        case 'startingopcode': {
          const n = this.digits('the starting opcode');
          if (!this.pkg) fail(t, "'startingopcode' must follow a 'package' statement");
          if (n.value > 99999) fail(n.at, `startingopcode ${n.value} is out of range (0 to 99999)`);
          this.nextOpcode = n.value;
          this.autoOnly = true;
          return;
        }
        case 'splitprefix':
          this.splitprefix(t);
          return;
        case 'special':
          this.special();
          return;
        case 'proc': {
          this.procedure(this.name('the procedure name'));
          return;
        }
      }
      if (!KEYWORDS.has(t.text)) {
        this.procedure(t);
        return;
      }
    }
    fail(t, `expected a definition (const, enum, struct, union, typedef, package, prefix, statindex, splitprefix, ` +
      `startingopcode or a procedure), found ${describe(t)}`);
  }

  private push(def: Definition): void {
    this.expectPunct(';', `after the definition of ${def.name}`);
    this.definitions.push(def);
  }

  private struct(): Definition {
    const name = this.name('the structure name');
    this.expectPunct('{', `after struct ${name.text}`);
    const fields: Declaration[] = [];
    do {
      fields.push(this.declaration('struct'));
      this.expectPunct(';', `after field ${fields[fields.length - 1].name} of struct ${name.text}`);
    } while (!this.isPunct(this.peek(), '}'));
    this.get();
    return { kind: 'struct', name: name.text, fields, at: name };
  }

  private union(): Definition {
    const name = this.name('the union name');
    const sw = this.get();
    if (!this.isWord(sw, 'switch')) fail(sw, `expected 'switch' after union ${name.text}, found ${describe(sw)}`);
    this.expectPunct('(', `after 'switch'`);
    const discriminant = this.declaration('union');
    if (discriminant.type.name === 'void') fail(discriminant.at, 'the discriminant of a union cannot be void');
    this.expectPunct(')', `after the discriminant of union ${name.text}`);
    this.expectPunct('{', `after 'switch (...)' of union ${name.text}`);
    const cases: UnionCase[] = [];
    let t = this.get();
    if (!this.isWord(t, 'case')) fail(t, `expected 'case' in union ${name.text}, found ${describe(t)}`);
    let dflt: Declaration | undefined;
    while (this.isWord(t, 'case')) {
      const label = this.value('a case value');
      this.expectPunct(':', `after case ${label.text}`);
      const decl = this.declaration('union');
      this.expectPunct(';', `after the declaration of case ${label.text}`);
      cases.push({ label, decl });
      t = this.get();
      if (!this.isWord(t, 'case') && !this.isWord(t, 'default') && !this.isPunct(t, '}')) {
        fail(t, `expected 'case', 'default' or '}' in union ${name.text}, found ${describe(t)}`);
      }
    }
    if (this.isWord(t, 'default')) {
      this.expectPunct(':', "after 'default'");
      dflt = this.declaration('union');
      this.expectPunct(';', 'after the default declaration');
      this.expectPunct('}', `after the default arm of union ${name.text}`);
    }
    return { kind: 'union', name: name.text, discriminant, cases, default: dflt, at: name };
  }

  private enum(): Definition {
    const name = this.name('the enum name');
    this.expectPunct('{', `after enum ${name.text}`);
    const members: EnumMember[] = [];
    for (;;) {
      const m = this.name('an enum member name');
      const member: EnumMember = { name: m.text, at: m };
      members.push(member);
      let t = this.get();
      if (this.isPunct(t, '=')) {
        member.value = this.value(`the value of ${m.text}`);
        t = this.get();
        if (!this.isPunct(t, ',') && !this.isPunct(t, '}')) fail(t, `expected ',' or '}' in enum ${name.text}, found ${describe(t)}`);
      } else if (!this.isPunct(t, ',') && !this.isPunct(t, '}')) {
        fail(t, `expected ',', '=' or '}' in enum ${name.text}, found ${describe(t)}`);
      }
      if (this.isPunct(t, '}')) break;
    }
    return { kind: 'enum', name: name.text, members, at: name };
  }

  /** rxgen's get_type: a type specifier. */
  private type(kind: DeclKind): TypeSpec {
    const t = this.get();
    if (t.kind !== 'ident') return fail(t, `expected a type, found ${describe(t)}`);
    const spec = (name: string, prefix?: string): TypeSpec => ({ name, prefix, at: t });
    switch (t.text) {
      case 'struct':
      case 'enum':
      case 'union':
        return spec(this.name(`a type name after '${t.text}'`).text, t.text);
      case 'unsigned': {
        const n = this.peek();
        if (this.isWord(n, 'char')) {
          this.get();
          return spec('u_char');
        }
        if (this.isWord(n, 'short')) {
          this.get();
          if (this.isWord(this.peek(), 'int')) this.get();
          return spec('u_short');
        }
        if (this.isWord(n, 'afs_int32')) {
          this.get();
          if (this.isWord(this.peek(), 'int')) this.get();
          return spec('afs_uint32');
        }
        if (this.isWord(n, 'int')) this.get();
        return spec('u_int');
      }
      case 'short':
        if (this.isWord(this.peek(), 'int')) this.get();
        return spec('short');
      case 'afs_int32':
        if (this.isWord(this.peek(), 'int')) this.get();
        return spec('afs_int32');
      case 'void':
        if (kind !== 'union') fail(t, 'void is allowed only in union definitions');
        return spec('void');
      case 'string':
      case 'opaque':
      case 'char':
      case 'int':
      case 'float':
      case 'double':
      case 'bool':
      case 'afsUUID':
        return spec(t.text);
    }
    if (KEYWORDS.has(t.text)) fail(t, `expected a type, found ${describe(t)}`);
    return spec(t.text);
  }

  /** rxgen's get_declaration. */
  private declaration(kind: DeclKind): Declaration {
    const type = this.type(kind);
    if (type.name === 'void') return { name: '', type, rel: 'alias', at: type.at };
    let rel: Declaration['rel'] = 'alias';
    let t = this.get();
    if (this.isPunct(t, '*')) {
      rel = 'pointer';
      t = this.get();
    }
    if (t.kind !== 'ident' || KEYWORDS.has(t.text)) fail(t, `expected ${rel === 'pointer' ? 'a name' : "'*' or a name"} after type ${type.name}, found ${describe(t)}`);
    const decl: Declaration = { name: t.text, type, rel, at: t };
    const open = this.peek();
    if (this.isPunct(open, '[') || this.isPunct(open, '<')) {
      if (rel === 'pointer') fail(open, `no arrays of pointers (${decl.name}): use a typedef`);
      this.get();
      if (open.text === '[') {
        decl.rel = 'vector';
        decl.size = this.value(`the size of ${decl.name}[]`);
        this.expectPunct(']', `after the size of ${decl.name}`);
      } else {
        decl.rel = 'array';
        if (!this.peekPunct('>')) {
          decl.size = this.value(`the bound of ${decl.name}<>`);
          this.expectPunct('>', `after the bound of ${decl.name}`);
        } else if (kind === 'IN' || kind === 'INOUT') {
          fail(open, `input arrays must have a bound: ${decl.name}<N>`);
        }
      }
    }
    if (type.name === 'opaque' && decl.rel !== 'vector' && decl.rel !== 'array') {
      fail(decl.at, `opaque ${decl.name} needs a size: opaque ${decl.name}[N] or opaque ${decl.name}<N>`);
    }
    if (type.name === 'string' && decl.rel !== 'array') {
      fail(decl.at, `string ${decl.name} needs a variable-length bound: string ${decl.name}<N> or string ${decl.name}<>`);
    }
    return decl;
  }

  private splitprefix(at: Token): void {
    let any = false;
    for (;;) {
      const t = this.get();
      if (this.isPunct(t, ';')) break;
      if (this.isWord(t, 'IN') || this.isWord(t, 'OUT')) {
        this.expectPunct('=', `after splitprefix ${t.text}`);
        const name = this.name(`the ${t.text} prefix`).text;
        if (t.text === 'IN') this.splitStart = name;
        else this.splitEnd = name;
        any = true;
        continue;
      }
      fail(t, `expected IN=name, OUT=name or ';' in splitprefix, found ${describe(t)}`);
    }
    if (!any) fail(at, 'splitprefix needs IN=name, OUT=name or both');
  }

  /** special TYPE name, name...; (hints for rxgen's C memory management: parsed and ignored). */
  private special(): void {
    this.type('special');
    for (;;) {
      this.name('a name in special');
      const t = this.get();
      if (this.isPunct(t, ';')) return;
      if (!this.isPunct(t, ',')) fail(t, `expected ',' or ';' in special, found ${describe(t)}`);
    }
  }

  /** NAME [ServerStub] ( params ) [split | multi] [= opcode] ; */
  private procedure(name: Token): void {
    if (!this.pkg) fail(name, `procedure ${name.text} must follow a 'package' statement`);
    let t = this.get();
    if (t.kind === 'ident' && !KEYWORDS.has(t.text)) t = this.get(); // a server stub name: only changes C names
    if (!this.isPunct(t, '(')) fail(t, `expected '(' after procedure ${name.text}, found ${describe(t)}`);
    const params: Param[] = [];
    if (!this.peekPunct(')')) {
      for (;;) {
        const p = this.peek();
        let direction: Direction | undefined;
        if (this.isWord(p, 'IN') || this.isWord(p, 'OUT') || this.isWord(p, 'INOUT')) {
          this.get();
          direction = p.text as Direction;
        }
        const decl = this.declaration(direction ?? 'param');
        direction ??= this.lastDirection;
        if (!direction) fail(decl.at, `expected IN, OUT or INOUT before parameter ${decl.name} (no earlier parameter gives a direction)`);
        this.lastDirection = direction;
        const dup = params.find((q) => q.name === decl.name);
        if (dup) fail(decl.at, `parameter ${decl.name} of ${name.text} is already declared at line ${dup.at.line}`);
        params.push({ name: decl.name, decl, direction, at: decl.at });
        const sep = this.get();
        if (this.isPunct(sep, ')')) break;
        if (!this.isPunct(sep, ',')) fail(sep, `expected ',' or ')' after parameter ${decl.name}, found ${describe(sep)}`);
      }
    }
    const proc: Proc = {
      name: name.text, params, split: false, multi: false,
      splitPrefix: { start: this.splitStart, end: this.splitEnd }, serverPrefix: this.serverPrefix, at: name,
    };
    t = this.get();
    let wanted = "'split', 'multi', '=' or ';'";
    if (this.isWord(t, 'multi') || this.isWord(t, 'split')) {
      proc[t.text as 'multi' | 'split'] = true;
      wanted = "'=' or ';'";
      t = this.get();
    }
    if (this.isPunct(t, '=')) {
      if (this.autoOnly) {
        fail(t, `opcode assignment is not allowed here: an earlier procedure of package ${this.pkg.prefix} ` +
          'was numbered automatically (or startingopcode was given)');
      }
      proc.opcodeRef = this.value(`the opcode of ${name.text}`);
      if (proc.opcodeRef.kind === 'number' && !/^[0-9]+$/.test(proc.opcodeRef.text)) {
        fail(proc.opcodeRef.at, `the opcode of ${name.text} must be a decimal number, found ${proc.opcodeRef.text}`);
      }
      wanted = "';'";
      t = this.get();
    } else {
      this.nextOpcode ??= 0;
      proc.autoOpcode = this.nextOpcode++;
      this.autoOnly = true;
    }
    if (!this.isPunct(t, ';')) fail(t, `expected ${wanted} after procedure ${name.text}, found ${describe(t)}`);
    this.pkg.procs.push(proc);
  }
}
