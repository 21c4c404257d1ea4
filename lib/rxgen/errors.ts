/** Where something is in an interface file. */
export interface Position {
  file: string;
  line: number;
  column: number;
}

/**
 * Anything wrong in an interface definition (.xg), a header it includes or
 * an error table: a syntax error, an unknown name, a broken rule of rxgen.
 * The message starts with file:line:column, as compilers print it.
 */
export class RxgenSyntaxError extends SyntaxError {
  readonly code = 'ERR_RXGEN_SYNTAX';
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** What went wrong, without the position. */
  readonly reason: string;
  constructor(at: Position, reason: string) {
    super(`${at.file}:${at.line}:${at.column}: ${reason}`);
    this.name = 'RxgenSyntaxError';
    this.file = at.file;
    this.line = at.line;
    this.column = at.column;
    this.reason = reason;
  }
}

export function fail(at: Position, reason: string): never {
  throw new RxgenSyntaxError(at, reason);
}
