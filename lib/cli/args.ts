/**
 * Command lines: each subcommand declares its options once, for parsing
 * (Node's util.parseArgs) and for --help; values are checked here and a bad
 * one is a UsageError naming the option and what it got.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { abortCodeName } from '../index';
import { UsageError } from './errors';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in --help (string options). */
  value?: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Usage lines, without the leading "rxrpc ". */
  usage: string[];
  /** Paragraphs after the usage. */
  description?: string[];
  options: Record<string, OptionSpec>;
  /** How many positional arguments it takes. */
  positionals: { min: number; max: number; names: string };
  examples?: string[];
}

/** Options every subcommand has. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'print one JSON document on stdout (also on failure)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Parses `argv` by `spec`; any mistake is a UsageError. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed {
  const options = { ...spec.options, ...COMMON_OPTIONS };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(options).map(([name, o]) =>
        [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\s*\n\s*/g, ' '), `see \`rxrpc ${spec.name} --help\``);
  }
  const values = parsed.values as Parsed['values'];
  if (values.help) return { values, positionals: parsed.positionals };
  const n = parsed.positionals.length;
  if (n < spec.positionals.min || n > spec.positionals.max) {
    const want = spec.positionals.min === spec.positionals.max ? `${spec.positionals.min}` :
      spec.positionals.max === Infinity ? `at least ${spec.positionals.min}` : `${spec.positionals.min} to ${spec.positionals.max}`;
    throw new UsageError(`expected ${want} argument${spec.positionals.max === 1 ? '' : 's'} (${spec.positionals.names}), got ${n}` +
      `${n ? `: ${parsed.positionals.map((p) => JSON.stringify(p)).join(' ')}` : ''}`, `see \`rxrpc ${spec.name} --help\``);
  }
  return { values, positionals: parsed.positionals };
}

/** The --help text of a subcommand. */
export function helpText(spec: CommandSpec): string {
  const lines = [`rxrpc ${spec.name}: ${spec.summary}`, '', 'Usage:'];
  for (const u of spec.usage) lines.push(`  rxrpc ${u}`);
  for (const p of spec.description ?? []) lines.push('', ...wrap(p, 78));
  lines.push('', 'Options:');
  const entries = Object.entries({ ...spec.options, ...COMMON_OPTIONS });
  const label = ([name, o]: [string, OptionSpec]) =>
    `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  const width = Math.min(30, Math.max(...entries.map((e) => label(e).length)) + 2);
  for (const e of entries) {
    const l = label(e);
    const help = wrap(`${e[1].help}${e[1].multiple ? ' (repeatable)' : ''}`, 76 - width);
    if (l.length + 2 > width) {
      lines.push(`  ${l}`);
      for (const h of help) lines.push(`  ${' '.repeat(width)}${h}`);
    } else {
      lines.push(`  ${l.padEnd(width)}${help[0]}`);
      for (const h of help.slice(1)) lines.push(`  ${' '.repeat(width)}${h}`);
    }
  }
  if (spec.examples?.length) {
    lines.push('', 'Examples:');
    for (const x of spec.examples) lines.push(`  ${x}`);
  }
  if (!(spec.description ?? []).some((p) => p.startsWith('Exit status'))) {
    lines.push('', 'Exit status: 0 ok, 1 the operation failed, 2 usage error, 3 this system cannot do it.');
  }
  return `${lines.join('\n')}\n`;
}

/** Words of `text` in lines of at most `width` characters. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line || out.length === 0) out.push(line);
  return out;
}

/** The value of a string option, or undefined. */
export function stringOption(parsed: Parsed, name: string): string | undefined {
  const v = parsed.values[name];
  if (Array.isArray(v)) return v[v.length - 1];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a repeatable string option. */
export function listOption(parsed: Parsed, name: string): string[] {
  const v = parsed.values[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function flag(parsed: Parsed, name: string): boolean {
  return parsed.values[name] === true;
}

/** An integer written in decimal or 0x hex, within [min, max]. */
export function parseInteger(what: string, text: string, min: number, max: number): number {
  const t = text.trim();
  const value = /^-?\d+$/.test(t) ? Number(t) : /^-?0x[0-9a-f]+$/i.test(t) ? (t.startsWith('-') ? -Number(t.slice(1)) : Number(t)) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${what} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`);
  }
  return value;
}

/** An optional integer option. */
export function integerOption(parsed: Parsed, name: string, min: number, max: number, fallback: number): number;
export function integerOption(parsed: Parsed, name: string, min: number, max: number): number | undefined;
export function integerOption(parsed: Parsed, name: string, min: number, max: number, fallback?: number): number | undefined {
  const text = stringOption(parsed, name);
  return text === undefined ? fallback : parseInteger(`--${name}`, text, min, max);
}

/** A service ID, 1 to 65535. */
export function parseService(what: string, text: string): number {
  return parseInteger(what, text, 1, 65535);
}

/** Bytes written in hex: pairs of digits, optionally 0x-prefixed, spaces and colons ignored. */
export function parseHex(what: string, text: string): Buffer {
  const t = text.trim().replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(t)) {
    const bad = /[^0-9a-f]/i.exec(t);
    throw new UsageError(`${what} must be bytes in hex (pairs of digits 0-9, a-f), not ${JSON.stringify(text)}` +
      (bad ? ` (${JSON.stringify(bad[0])} at ${bad.index})` : ' (an odd number of digits)'));
  }
  return Buffer.from(t, 'hex');
}

/** "N:M" or "N->M": an upgrade from service N to M. */
export function parseUpgrade(text: string): { from: number; to: number } {
  const m = /^\s*(\w+)\s*(?::|->)\s*(\w+)\s*$/.exec(text);
  if (!m) throw new UsageError(`--upgrade must be FROM:TO (two service IDs, e.g. 52:2503), not ${JSON.stringify(text)}`);
  const from = parseService('--upgrade FROM', m[1]);
  const to = parseService('--upgrade TO', m[2]);
  if (from === to) throw new UsageError(`--upgrade must name two different services, not ${JSON.stringify(text)}`);
  return { from, to };
}

// Ranges that abortCodeName knows names in: Rx, rxgen, rxkad, VL.
const NAMED_CODE_RANGES: Array<[number, number]> = [[-8, -1], [-457, -450], [19270400, 19270412], [363520, 363551]];
let codesByName: Map<string, number> | undefined;

/** The abort code called `name` (RX_USER_ABORT, RXGEN_OPCODE, VL_NOENT, ...), if it is one the library names. */
export function abortCodeByName(name: string): number | undefined {
  if (!codesByName) {
    codesByName = new Map();
    for (const [lo, hi] of NAMED_CODE_RANGES) {
      for (let c = lo; c <= hi; c++) {
        const n = abortCodeName(c);
        if (n) codesByName.set(n, c);
      }
    }
  }
  return codesByName.get(name.toUpperCase());
}

/** An abort code: a name, or a non-zero 32-bit integer (signed or unsigned). */
export function parseAbortCode(what: string, text: string, names?: ReadonlyMap<string, number>): number {
  const byName = names?.get(text) ?? abortCodeByName(text);
  if (byName !== undefined) return byName;
  if (/^[A-Za-z_]/.test(text)) {
    throw new UsageError(`${what}: ${JSON.stringify(text)} is not an abort code this command knows by name; ` +
      'give the number (e.g. -6 for RX_USER_ABORT, written --abort=-6)');
  }
  const code = parseInteger(what, text, -0x80000000, 0xffffffff);
  if (code === 0) throw new UsageError(`${what} must not be 0 (0 is success, not an abort)`);
  return code | 0;
}

export interface Target {
  /** As given on the command line. */
  host: string;
  /** The IP address calls go to. */
  address: string;
  port: number;
}

/**
 * HOST[:PORT], [IPv6]:PORT or a bare IPv6 address. HOST may be a name; it is
 * looked up once (the library itself takes only addresses).
 */
export async function parseTarget(text: string, defaultPort: number | undefined, what = 'HOST[:PORT]'): Promise<Target> {
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracket) {
    host = bracket[1];
    portText = bracket[2];
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const i = text.lastIndexOf(':');
    if (i >= 0 && text.indexOf(':') === i) {
      host = text.slice(0, i);
      portText = text.slice(i + 1);
    } else if (i >= 0) {
      throw new UsageError(`${what}: ${JSON.stringify(text)} is neither HOST:PORT nor an IPv6 address (write [ADDRESS]:PORT for IPv6 with a port)`);
    } else {
      host = text;
    }
  }
  if (host === '') throw new UsageError(`${what}: no host in ${JSON.stringify(text)}`);
  let port: number;
  if (portText !== undefined) {
    port = parseInteger(`the port in ${JSON.stringify(text)}`, portText, 1, 65535);
  } else if (defaultPort !== undefined) {
    port = defaultPort;
  } else {
    throw new UsageError(`${what}: ${JSON.stringify(text)} has no port, and there is no default for this service; write HOST:PORT`);
  }
  let address = host;
  if (isIP(host) === 0) {
    try {
      address = (await lookup(host)).address;
    } catch (err) {
      throw new UsageError(`cannot resolve ${JSON.stringify(host)}: ${(err as Error).message}`, 'give an IP address');
    }
  }
  return { host, address, port };
}

/** address:port, with brackets for IPv6. */
export function showAddress(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
