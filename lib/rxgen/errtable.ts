/**
 * Error tables in the com_err format AFS uses (.et, compiled by compile_et):
 *
 *   error_table VL
 *     ec VL_IDEXIST, "Volume Id entry exists in vl database"
 *     ec VL_IO, "I/O related error"
 *   end
 *
 * Codes are numbered from the table's base, which comes from its name: each
 * of the first four characters is a 6-bit number (A-Z 1-26, a-z 27-52, 0-9
 * 53-62, _ 63) and the result is shifted left by 8 ("VL" -> 363520).
 */
import { fail, Position } from './errors';
import { showChar } from './lexer';

export interface ErrorCode {
  name: string;
  /** The abort code, signed as Rx shows it. */
  code: number;
  message: string;
  at: Position;
}

export interface ErrorTable {
  name: string;
  base: number;
  codes: ErrorCode[];
  at: Position;
}

const CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_';

/** The first code of an error table called `name` (compile_et truncates names to 4 characters). */
export function errorTableBase(name: string, at: Position): number {
  if (name.length === 0 || !/^[A-Za-z]/.test(name)) fail(at, `error table name must start with a letter: ${JSON.stringify(name)}`);
  let n = 0;
  for (const c of name.slice(0, 4)) {
    const i = CHARSET.indexOf(c);
    if (i < 0) fail(at, `illegal character ${showChar(c)} in error table name ${name}`);
    n = n * 64 + i + 1;
  }
  return (n * 256) | 0;
}

interface EtToken extends Position {
  kind: 'word' | 'string' | 'punct' | 'eof';
  text: string;
}

function tokenize(src: string, file: string): EtToken[] {
  const out: EtToken[] = [];
  let line = 1;
  let col = 1;
  let i = 0;
  const step = () => {
    if (src[i] === '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
    i++;
  };
  while (i < src.length) {
    const c = src[i];
    if (c === '\n' || c === ' ' || c === '\t' || c === '\r') {
      step();
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') step();
    } else if (c === '"') {
      const at = { file, line, column: col };
      step();
      let text = '';
      while (i < src.length && src[i] !== '"') {
        text += src[i];
        step();
      }
      if (i >= src.length) fail(at, 'unterminated string: expected "');
      step();
      out.push({ kind: 'string', text, ...at });
    } else if (/[A-Za-z0-9_]/.test(c)) {
      const at = { file, line, column: col };
      let text = '';
      while (i < src.length && /[A-Za-z0-9_]/.test(src[i])) {
        text += src[i];
        step();
      }
      out.push({ kind: 'word', text, ...at });
    } else if (c === ',' || c === '=') {
      out.push({ kind: 'punct', text: c, file, line, column: col });
      step();
    } else {
      fail({ file, line, column: col }, `illegal character ${showChar(c)} in error table`);
    }
  }
  out.push({ kind: 'eof', text: '', file, line, column: col });
  return out;
}

const show = (t: EtToken) => (t.kind === 'eof' ? 'end of file' : t.kind === 'string' ? `"${t.text}"` : `'${t.text}'`);

/** Parses one .et file. */
export function parseErrorTable(src: string, file: string): ErrorTable {
  const tokens = tokenize(src, file);
  let k = 0;
  const next = () => tokens[k++];
  const expect = (what: string, ok: (t: EtToken) => boolean): EtToken => {
    const t = next();
    if (!ok(t)) fail(t, `expected ${what}, found ${show(t)}`);
    return t;
  };
  const start = expect("'error_table'", (t) => t.kind === 'word' && (t.text === 'error_table' || t.text === 'et'));
  let nameTok = expect('the error table name', (t) => t.kind === 'word');
  // "error_table 1 NAME": a table function number before the name.
  if (/^[0-9]+$/.test(nameTok.text) && tokens[k].kind === 'word' && !['ec', 'error_code', 'end'].includes(tokens[k].text)) {
    nameTok = next();
  }
  const base = errorTableBase(nameTok.text, nameTok);
  const codes: ErrorCode[] = [];
  const seen = new Map<string, Position>();
  let index = 0;
  for (;;) {
    const t = expect("'ec' or 'end'", (x) => x.kind === 'word' && ['ec', 'error_code', 'end'].includes(x.text));
    if (t.text === 'end') break;
    const name = expect('an error code name', (x) => x.kind === 'word' && /^[A-Za-z_]/.test(x.text));
    let sep = expect("',' or '='", (x) => x.kind === 'punct');
    if (sep.text === '=') {
      const v = expect('an index number', (x) => x.kind === 'word' && /^[0-9]+$/.test(x.text));
      const wanted = Number(v.text);
      if (wanted < index) fail(v, `error code ${name.text} = ${wanted} is out of order (the next index is ${index})`);
      index = wanted;
      sep = expect("','", (x) => x.kind === 'punct' && x.text === ',');
    }
    if (sep.text !== ',') fail(sep, `expected ',', found ${show(sep)}`);
    const message = expect('a quoted description', (x) => x.kind === 'string');
    const earlier = seen.get(name.text);
    if (earlier) fail(name, `error code ${name.text} is already defined at ${earlier.file}:${earlier.line}`);
    seen.set(name.text, name);
    codes.push({ name: name.text, code: (base + index) | 0, message: message.text, at: name });
    index++;
  }
  const after = next();
  if (after.kind !== 'eof') fail(after, `expected end of file after 'end', found ${show(after)}`);
  return { name: nameTok.text, base, codes, at: start };
}
