/**
 * The part of the C preprocessor that rxgen's inputs rely on (rxgen runs cpp
 * over every .xg): object-like #define and #undef, #include "file" and
 * <file> resolved against include paths, #if/#ifdef/#ifndef/#elif/#else/
 * #endif, #error; identifiers that name a macro are replaced by its tokens.
 * An included file ending in .et is read as a com_err error table.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { fail, Position } from './errors';
import { ErrorTable, parseErrorTable } from './errtable';
import { Directive, Lexer, showChar, Token } from './lexer';

export interface SourceOptions {
  /** Directories searched for #include files, after the including file's own directory for "file". */
  includePaths: readonly string[];
  /** Reads a file; returns undefined (or throws ENOENT) when there is none. */
  readFile: (path: string) => string | undefined;
  /** Macros defined before the first line, as with cpp -D. */
  defines: Readonly<Record<string, string>>;
}

interface Macro {
  body: string;
  bodyAt: Position;
  at: Position;
  functionLike: boolean;
}

interface Frame {
  lexer: Lexer;
  file: string;
  /** Open conditionals of this file. */
  conds: Cond[];
}

interface Cond {
  at: Position;
  /** This branch's text is used. */
  active: boolean;
  /** Some branch of this conditional was taken already. */
  taken: boolean;
  /** The enclosing text was used. */
  parentActive: boolean;
  sawElse: boolean;
}

interface Pending extends Token {
  hide?: ReadonlySet<string>;
}

const MAX_INCLUDE_DEPTH = 64;

export class Preprocessor {
  private readonly frames: Frame[] = [];
  private readonly macros = new Map<string, Macro>();
  private readonly pending: Pending[] = [];
  readonly errorTables: ErrorTable[] = [];
  /** Macros that % lines define for the C code: not expanded here, but their values can be sizes. */
  readonly passDefines = new Map<string, { body: string; at: Position }>();
  /** Every file read, in order. */
  readonly files: string[] = [];

  constructor(source: string, file: string, private readonly options: SourceOptions) {
    const cmdline = { file: '<command line>', line: 1, column: 1 };
    for (const [name, body] of Object.entries(options.defines)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(cmdline, `invalid macro name ${JSON.stringify(name)} in defines`);
      this.macros.set(name, { body: String(body), bodyAt: cmdline, at: cmdline, functionLike: false });
    }
    this.push(source, file);
  }

  private push(source: string, file: string): void {
    this.files.push(file);
    this.frames.push({ lexer: new Lexer(source, file), file, conds: [] });
  }

  private get active(): boolean {
    const frame = this.frames[this.frames.length - 1];
    const top = frame?.conds[frame.conds.length - 1];
    return top ? top.active : true;
  }

  /** The next token after preprocessing; 'eof' at the end of the main file. */
  next(): Token {
    for (;;) {
      const queued = this.pending.shift();
      if (queued) {
        if (queued.kind === 'ident' && this.macros.has(queued.text) && !queued.hide?.has(queued.text)) {
          this.expand(queued, queued.hide);
          continue;
        }
        delete queued.hide;
        return queued;
      }
      const frame = this.frames[this.frames.length - 1];
      const item = frame.lexer.next(!this.active);
      if (item.kind === 'directive') {
        this.directive(item, frame);
        continue;
      }
      if (item.kind === 'passthrough') {
        const m = /^%\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_(])\s*(.*)$/.exec(item.text);
        if (m && this.active) {
          const body = m[2].replace(/\/\*.*?\*\//g, ' ').replace(/\/\/.*$/, '').trim();
          this.passDefines.set(m[1], { body, at: item });
        }
        continue;
      }
      if (item.kind === 'eof') {
        const open = frame.conds[frame.conds.length - 1];
        if (open) fail(open.at, 'unterminated conditional: expected #endif');
        if (this.frames.length === 1) return item;
        this.frames.pop();
        continue;
      }
      if (item.kind === 'ident' && this.macros.has(item.text)) {
        this.expand(item, undefined);
        continue;
      }
      return item;
    }
  }

  /** Replaces a use of a macro with its body, the tokens placed where the macro was used. */
  private expand(use: Token, hide: ReadonlySet<string> | undefined): void {
    const macro = this.macros.get(use.text)!;
    if (macro.functionLike) {
      fail(use, `function-like macro ${use.text} (defined at ${where(macro.at)}) is not supported`);
    }
    const inner = new Set(hide);
    inner.add(use.text);
    const lexer = new Lexer(macro.body, macro.bodyAt.file, macro.bodyAt.line, macro.bodyAt.column, false);
    const out: Pending[] = [];
    for (;;) {
      const t = lexer.next();
      if (t.kind === 'eof') break;
      if (t.kind !== 'ident' && t.kind !== 'number' && t.kind !== 'string' && t.kind !== 'punct') {
        fail(t, `'${t.kind === 'directive' ? '#' : '%'}' in the body of macro ${use.text}`);
      }
      out.push({
        kind: t.kind, text: t.text, file: use.file, line: use.line, column: use.column,
        macro: use.macro ?? { name: use.text, defined: macro.at }, hide: inner,
      });
    }
    this.pending.unshift(...out);
  }

  private directive(d: Directive, frame: Frame): void {
    const conds = frame.conds;
    const top = conds[conds.length - 1];
    switch (d.name) {
      case 'if':
      case 'ifdef':
      case 'ifndef': {
        const parentActive = this.active;
        let value = false;
        if (parentActive) {
          if (d.name === 'if') {
            value = this.evaluate(d);
          } else {
            const name = macroName(d);
            value = this.macros.has(name) === (d.name === 'ifdef');
          }
        }
        conds.push({ at: d, active: parentActive && value, taken: value, parentActive, sawElse: false });
        return;
      }
      case 'elif': {
        if (!top) fail(d, '#elif without #if');
        if (top.sawElse) fail(d, '#elif after #else');
        const value = top.parentActive && !top.taken && this.evaluate(d);
        top.active = value;
        top.taken ||= value;
        return;
      }
      case 'else':
        if (!top) fail(d, '#else without #if');
        if (top.sawElse) fail(d, `#else after #else (the #if is at ${where(top.at)})`);
        top.sawElse = true;
        top.active = top.parentActive && !top.taken;
        top.taken = true;
        return;
      case 'endif':
        if (!top) fail(d, '#endif without #if');
        conds.pop();
        return;
    }
    if (!this.active) return;
    switch (d.name) {
      case 'define': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(\()?/.exec(d.rest);
        if (!m) fail(d.restAt, `expected a macro name after #define${d.rest ? `, found ${showChar(d.rest[0])}` : ''}`);
        const after = d.rest.slice(m[1].length);
        const body = m[2] ? after.slice(after.indexOf(')') + 1).trim() : after.trim();
        const bodyColumn = d.restAt.column + d.rest.indexOf(body, m[1].length);
        this.macros.set(m[1], {
          body, at: d, functionLike: m[2] !== undefined, bodyAt: { file: d.file, line: d.line, column: bodyColumn },
        });
        return;
      }
      case 'undef':
        this.macros.delete(macroName(d));
        return;
      case 'include':
        this.include(d, frame);
        return;
      case 'error':
        return fail(d, `#error ${d.rest}`);
      // Directives that change nothing here: line markers (# 12 "file"), #line, #pragma, #ident, #warning.
      case 'line':
      case 'pragma':
      case 'ident':
      case 'warning':
      case '':
        return;
      default:
        if (/^[0-9]+$/.test(d.name)) return;
        fail(d, `unknown preprocessor directive #${d.name}`);
    }
  }

  private include(d: Directive, frame: Frame): void {
    let rest = d.rest;
    // #include MACRO: the macro's text names the file.
    const m0 = /^([A-Za-z_][A-Za-z0-9_]*)$/.exec(rest);
    if (m0 && this.macros.has(m0[1])) rest = this.macros.get(m0[1])!.body.trim();
    const m = /^"([^"]+)"|^<([^>]+)>/.exec(rest);
    if (!m) fail(d.restAt, `expected "file" or <file> after #include${rest ? `, found ${rest}` : ''}`);
    const name = m[1] ?? m[2];
    if (this.frames.length >= MAX_INCLUDE_DEPTH) fail(d, `#include nested more than ${MAX_INCLUDE_DEPTH} deep (is ${name} including itself?)`);
    const candidates = isAbsolute(name)
      ? [name]
      : [...(m[1] !== undefined ? [join(dirname(frame.file), name)] : []), ...this.options.includePaths.map((p) => join(p, name))];
    for (const path of candidates) {
      const text = this.read(path);
      if (text === undefined) continue;
      if (path.endsWith('.et')) {
        this.files.push(path);
        this.errorTables.push(parseErrorTable(text, path));
        return;
      }
      this.push(text, path);
      return;
    }
    const dirs = isAbsolute(name) ? [] : [...(m[1] !== undefined ? [dirname(frame.file)] : []), ...this.options.includePaths];
    fail(d, `cannot find include file ${m[0]}${dirs.length ? ` (looked in ${dirs.join(', ')})` : isAbsolute(name) ? '' : ' (no include paths given)'}`);
  }

  private read(path: string): string | undefined {
    try {
      return this.options.readFile(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw err;
    }
  }

  /** The value of an #if or #elif expression. */
  private evaluate(d: Directive): boolean {
    const tokens = exprTokens(d.rest, d.restAt);
    // Expand macros in the expression, but not the operand of defined.
    const expanded: ExprToken[] = [];
    const expandInto = (list: ExprToken[], hide: Set<string>) => {
      for (let i = 0; i < list.length; i++) {
        const t = list[i];
        if (t.kind === 'ident' && t.text === 'defined') {
          expanded.push(t);
          const a = list[i + 1];
          if (a?.text === '(') {
            expanded.push(...list.slice(i + 1, i + 4));
            i += 3;
          } else if (a) {
            expanded.push(a);
            i += 1;
          }
          continue;
        }
        const macro = t.kind === 'ident' ? this.macros.get(t.text) : undefined;
        if (macro && !hide.has(t.text) && !macro.functionLike) {
          expandInto(exprTokens(macro.body, t).map((x) => ({ ...x, line: t.line, column: t.column })), new Set([...hide, t.text]));
          continue;
        }
        expanded.push(t);
      }
    };
    expandInto(tokens, new Set());
    const macros = this.macros;
    const parser = new ExprParser(expanded, `the #${d.name} expression`, d.restAt, (name) => macros.has(name), () => 0);
    return parser.parse() !== 0;
  }
}

function where(at: Position): string {
  return `${at.file}:${at.line}`;
}

function macroName(d: Directive): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(d.rest);
  if (!m) fail(d.restAt, `expected one macro name after #${d.name}${d.rest ? `, found ${JSON.stringify(d.rest)}` : ''}`);
  return m[1];
}

interface ExprToken extends Position {
  kind: 'ident' | 'number' | 'op';
  text: string;
}

const OPS = ['||', '&&', '==', '!=', '<=', '>=', '<<', '>>', '!', '~', '-', '+', '*', '/', '%', '<', '>', '&', '|', '^', '(', ')', '?', ':'];

function exprTokens(text: string, at: Position): ExprToken[] {
  const out: ExprToken[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const pos = { file: at.file, line: at.line, column: at.column + i };
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*/.exec(text.slice(i));
    if (num) {
      out.push({ kind: 'number', text: num[1], ...pos });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (id) {
      out.push({ kind: 'ident', text: id[0], ...pos });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) fail(pos, `illegal character ${showChar(c)} in #if expression`);
    out.push({ kind: 'op', text: op, ...pos });
    i += op.length;
  }
  return out;
}

const BINARY: Record<string, [number, (a: number, b: number) => number]> = {
  '||': [1, (a, b) => (a || b ? 1 : 0)],
  '&&': [2, (a, b) => (a && b ? 1 : 0)],
  '|': [3, (a, b) => a | b],
  '^': [4, (a, b) => a ^ b],
  '&': [5, (a, b) => a & b],
  '==': [6, (a, b) => (a === b ? 1 : 0)],
  '!=': [6, (a, b) => (a !== b ? 1 : 0)],
  '<': [7, (a, b) => (a < b ? 1 : 0)],
  '>': [7, (a, b) => (a > b ? 1 : 0)],
  '<=': [7, (a, b) => (a <= b ? 1 : 0)],
  '>=': [7, (a, b) => (a >= b ? 1 : 0)],
  '<<': [8, (a, b) => a * 2 ** b],
  '>>': [8, (a, b) => Math.floor(a / 2 ** b)],
  '+': [9, (a, b) => a + b],
  '-': [9, (a, b) => a - b],
  '*': [10, (a, b) => a * b],
  '/': [10, (a, b) => Math.trunc(a / b)],
  '%': [10, (a, b) => a % b],
};

/**
 * The value of a C integer constant expression, such as the body of a
 * `%#define` line; `ident` gives the value of a name.
 */
export function evaluateExpression(text: string, at: Position, what: string, ident: (name: string, at: Position) => number): number {
  return new ExprParser(exprTokens(text, at), what, at, () => false, (t) => ident(t.text, t)).parse();
}

/** Integer constant expressions of #if, with defined(NAME); cpp makes unknown names 0. */
class ExprParser {
  private k = 0;
  constructor(private readonly tokens: ExprToken[], private readonly what: string, private readonly at: Position,
    private readonly isDefined: (name: string) => boolean, private readonly ident: (t: ExprToken) => number) {}

  parse(): number {
    if (this.tokens.length === 0) fail(this.at, `expected an expression in ${this.what}`);
    const v = this.ternary();
    const extra = this.tokens[this.k];
    if (extra) fail(extra, `unexpected '${extra.text}' in ${this.what}`);
    return v;
  }

  private peek(): ExprToken | undefined {
    return this.tokens[this.k];
  }

  private take(text?: string): ExprToken {
    const t = this.tokens[this.k];
    if (!t) {
      const last = this.tokens[this.tokens.length - 1];
      fail({ ...last, column: last.column + last.text.length }, `expected ${text ? `'${text}'` : 'an operand'} at the end of ${this.what}`);
    }
    if (text !== undefined && t.text !== text) fail(t, `expected '${text}', found '${t.text}'`);
    this.k++;
    return t;
  }

  private ternary(): number {
    const c = this.binary(1);
    if (this.peek()?.text !== '?') return c;
    this.take('?');
    const a = this.ternary();
    this.take(':');
    const b = this.ternary();
    return c ? a : b;
  }

  private binary(min: number): number {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      const op = t && t.kind === 'op' ? BINARY[t.text] : undefined;
      if (!op || op[0] < min) return left;
      this.k++;
      const right = this.binary(op[0] + 1);
      if ((t!.text === '/' || t!.text === '%') && right === 0) fail(t!, `division by zero in ${this.what}`);
      left = op[1](left, right);
    }
  }

  private unary(): number {
    const t = this.take();
    if (t.kind === 'number') return Number(t.text.startsWith('0') && t.text.length > 1 && !/^0[xX]/.test(t.text) ? parseInt(t.text, 8) : t.text);
    if (t.kind === 'ident') {
      if (t.text !== 'defined') return this.ident(t);
      const paren = this.peek()?.text === '(';
      if (paren) this.take('(');
      const name = this.take();
      if (name.kind !== 'ident') fail(name, `expected a macro name after defined, found '${name.text}'`);
      if (paren) this.take(')');
      return this.isDefined(name.text) ? 1 : 0;
    }
    switch (t.text) {
      case '(': {
        const v = this.ternary();
        this.take(')');
        return v;
      }
      case '!':
        return this.unary() ? 0 : 1;
      case '~':
        return ~this.unary();
      case '-':
        return -this.unary();
      case '+':
        return this.unary();
      default:
        return fail(t, `expected an operand, found '${t.text}'`);
    }
  }
}
