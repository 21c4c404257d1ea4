/**
 * The scanner of rxgen's interface language, with what cpp would have done
 * to the text first: comments are dropped, preprocessor lines (#...) come out
 * whole as directives, and % lines (text rxgen copies into its C output) are
 * skipped, as are @{ ... @} blocks.
 */
import { fail, Position } from './errors';

export type TokenKind = 'ident' | 'number' | 'string' | 'punct' | 'eof';

export interface Token extends Position {
  kind: TokenKind;
  /** The text: an identifier, a number as written, a string without its quotes, a punctuation character. */
  text: string;
  /** Set on tokens that came from expanding a macro. */
  macro?: { name: string; defined: Position };
}

/** A % line: text rxgen copies into its C output. */
export interface Passthrough extends Position {
  kind: 'passthrough';
  text: string;
}

export interface Directive extends Position {
  kind: 'directive';
  /** The word after '#' ("define", "include", ...), or the line number of a line marker. */
  name: string;
  /** The rest of the logical line, comments removed, trimmed. */
  rest: string;
  /** Where `rest` starts. */
  restAt: Position;
}

const PUNCT = new Set(['(', ')', '{', '}', '[', ']', '<', '>', '*', ',', '=', ':', ';']);
const isIdentStart = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isDigit = (c: string) => c >= '0' && c <= '9';
const isIdentChar = (c: string) => isIdentStart(c) || isDigit(c);
const isHex = (c: string) => isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

/** How a character looks in a message. */
export function showChar(c: string): string {
  const code = c.charCodeAt(0);
  return code >= 0x20 && code < 0x7f ? `'${c}'` : `character ${code}`;
}

export class Lexer {
  private pos = 0;
  private line = 1;
  private column = 1;
  /** Only whitespace and comments so far on this line. */
  private lineStart = true;

  constructor(private readonly src: string, private readonly file: string, line = 1, column = 1, lineStart = true) {
    this.line = line;
    this.column = column;
    this.lineStart = lineStart;
  }

  private here(): Position {
    return { file: this.file, line: this.line, column: this.column };
  }

  private peekChar(offset = 0): string {
    return this.src[this.pos + offset] ?? '';
  }

  private advance(): string {
    const c = this.src[this.pos++];
    if (c === '\n') {
      this.line++;
      this.column = 1;
      this.lineStart = true;
    } else {
      this.column++;
    }
    return c;
  }

  private skipBlockComment(): void {
    const start = this.here();
    this.advance();
    this.advance();
    for (;;) {
      if (this.pos >= this.src.length) fail(start, 'unterminated comment: expected */');
      if (this.peekChar() === '*' && this.peekChar(1) === '/') {
        this.advance();
        this.advance();
        return;
      }
      this.advance();
    }
  }

  private skipLine(): void {
    while (this.pos < this.src.length && this.peekChar() !== '\n') this.advance();
  }

  /**
   * The next token or directive. While `skipping` (inside a false #if), only
   * directives come out and the text in between is not checked.
   */
  next(skipping = false): Token | Directive | Passthrough {
    for (;;) {
      if (this.pos >= this.src.length) return { kind: 'eof', text: '', ...this.here() };
      const c = this.peekChar();
      if (c === '\n' || c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
        this.advance();
        continue;
      }
      if (c === '/' && this.peekChar(1) === '*') {
        this.skipBlockComment();
        continue;
      }
      if (c === '/' && this.peekChar(1) === '/') {
        this.skipLine();
        continue;
      }
      if (c === '#' && this.lineStart) return this.directive();
      if (c === '%' && this.column === 1) {
        const at = this.here();
        const start = this.pos;
        this.skipLine();
        return { kind: 'passthrough', text: this.src.slice(start, this.pos).replace(/\r$/, ''), ...at };
      }
      if (c === '@' && this.peekChar(1) === '{') {
        const start = this.here();
        while (!(this.peekChar() === '@' && this.peekChar(1) === '}')) {
          if (this.pos >= this.src.length) fail(start, 'unterminated @{ block: expected @}');
          this.advance();
        }
        this.advance();
        this.advance();
        continue;
      }
      this.lineStart = false;
      if (skipping) {
        this.advance();
        continue;
      }
      return this.token();
    }
  }

  private token(): Token {
    const at = this.here();
    const c = this.peekChar();
    if (PUNCT.has(c)) {
      this.advance();
      return { kind: 'punct', text: c, ...at };
    }
    if (c === '"') {
      this.advance();
      let text = '';
      while (this.peekChar() !== '"') {
        if (this.pos >= this.src.length || this.peekChar() === '\n') fail(at, 'unterminated string constant: expected "');
        text += this.advance();
      }
      this.advance();
      return { kind: 'string', text, ...at };
    }
    if (isDigit(c) || (c === '-' && isDigit(this.peekChar(1)))) {
      let text = this.advance();
      if (text === '0' && (this.peekChar() === 'x' || this.peekChar() === 'X') && isHex(this.peekChar(1))) {
        text += this.advance();
        while (isHex(this.peekChar())) text += this.advance();
      } else {
        if (text === '-' && this.peekChar() === '0' && (this.peekChar(1) === 'x' || this.peekChar(1) === 'X') && isHex(this.peekChar(2))) {
          text += this.advance() + this.advance();
          while (isHex(this.peekChar())) text += this.advance();
        }
        while (isDigit(this.peekChar())) text += this.advance();
      }
      // C integer suffixes, as headers write them (0x10U, 1L).
      while ('uUlL'.includes(this.peekChar()) && this.peekChar() !== '') this.advance();
      if (isIdentChar(this.peekChar())) fail(this.here(), `invalid character ${showChar(this.peekChar())} in number ${text}`);
      return { kind: 'number', text, ...at };
    }
    if (isIdentStart(c)) {
      let text = '';
      while (isIdentChar(this.peekChar())) text += this.advance();
      return { kind: 'ident', text, ...at };
    }
    return fail(at, `illegal character ${showChar(c)}`);
  }

  /** A preprocessor line: '#', a name, the rest of the logical line. */
  private directive(): Directive {
    const at = this.here();
    this.advance(); // '#'
    let text = '';
    for (;;) {
      const c = this.peekChar();
      if (this.pos >= this.src.length || c === '\n') break;
      if (c === '\\' && (this.peekChar(1) === '\n' || (this.peekChar(1) === '\r' && this.peekChar(2) === '\n'))) {
        this.advance();
        if (this.peekChar() === '\r') this.advance();
        this.advance();
        this.lineStart = false;
        continue;
      }
      if (c === '/' && this.peekChar(1) === '*') {
        this.skipBlockComment();
        this.lineStart = false;
        text += ' ';
        continue;
      }
      if (c === '/' && this.peekChar(1) === '/') {
        this.skipLine();
        break;
      }
      if (c === '"') {
        text += this.advance();
        while (this.pos < this.src.length && this.peekChar() !== '"' && this.peekChar() !== '\n') text += this.advance();
        if (this.peekChar() === '"') text += this.advance();
        continue;
      }
      text += this.advance();
    }
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*|[0-9]+)?/.exec(text)!;
    const name = m[1] ?? '';
    // Where the rest starts: good enough for messages on one-line directives.
    const restOffset = m[0].length + (/^\s*/.exec(text.slice(m[0].length))?.[0].length ?? 0);
    const restAt = { file: this.file, line: at.line, column: at.column + 1 + restOffset };
    return { kind: 'directive', name, rest: text.slice(m[0].length).trim(), restAt, ...at };
  }
}
