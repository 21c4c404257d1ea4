/**
 * The kernel's own view of rxrpc: /proc/net/rxrpc/{calls,conns,peers,locals,
 * bundles,stats}. The formats change between kernels (6.1 has no bundles or
 * stats; 6.12 adds columns such as CW and Ref/Act and writes "(einval)" for a
 * preallocated call's peer; 7.x renames peers' MTU to Maxd and shows an RTT of
 * -1), so tables are read by their header line: every column is kept under its
 * header name, numbers are decoded where the column is known, and a line that
 * does not fit its header is kept as it is, never dropped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { abortCodeName } from '../index';

export const PROC_RXRPC = '/proc/net/rxrpc';
export const TABLE_FILES = ['calls', 'conns', 'peers', 'locals', 'bundles'] as const;

export type Cell = string | number;
export type Row = Record<string, Cell>;

export interface Table {
  /** Column names, from the header line. */
  columns: string[];
  rows: Row[];
  /** Lines that do not have as many fields as the header. */
  unparsed: string[];
}

/** Columns printed as %x (hex) in net/rxrpc/proc.c, by file ('*' for all). */
const HEX_COLUMNS: Record<string, ReadonlySet<string>> = {
  '*': new Set(['SvID', 'ConnID', 'CallID', 'Abort', 'DebugId', 'TxSeq', 'TW', 'RxSeq', 'RW', 'RxSerial', 'RxTimo', 'Key',
    'Serial', 'ISerial', 'CallId0', 'CallId1', 'CallId2', 'CallId3', 'Bundle', 'Conn_0', 'Conn_1', 'Conn_2', 'Conn_3']),
  calls: new Set(['CW']),
};
/** Columns printed as decimal numbers. */
const DECIMAL_COLUMNS = new Set(['Use', 'Ref', 'Act', 'RxQ', 'CW', 'SST', 'MTU', 'Maxd', 'RTT', 'RTO']);

function decode(file: string, column: string, text: string): Cell {
  if (HEX_COLUMNS['*'].has(column) || HEX_COLUMNS[file]?.has(column)) {
    if (!/^[0-9a-f]+$/i.test(text)) return text;
    const v = Number.parseInt(text, 16);
    if (column === 'Abort') return v | 0; // abort codes are shown signed
    return Number.isSafeInteger(v) ? v : text;
  }
  if (DECIMAL_COLUMNS.has(column) && /^-?\d+$/.test(text)) return Number(text);
  if (column === 'LastUse' && /^-?\d+s$/.test(text)) return Number(text.slice(0, -1));
  return text;
}

/** A cell as --list prints it: IDs, serials and sequence numbers in hex as the kernel writes them (services and aborts in decimal). */
export function cellText(file: string, column: string, value: Cell | undefined): string {
  if (typeof value === 'number' && column !== 'SvID' && column !== 'Abort' && (HEX_COLUMNS['*'].has(column) || HEX_COLUMNS[file]?.has(column))) {
    return value.toString(16);
  }
  return value === undefined ? '' : String(value);
}

/** A table file: a header line of column names, then one line per object. */
export function parseTable(file: string, text: string): Table {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return { columns: [], rows: [], unparsed: [] };
  const columns = lines[0].trim().split(/\s+/);
  const rows: Row[] = [];
  const unparsed: string[] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== columns.length) {
      unparsed.push(line);
      continue;
    }
    const row: Row = {};
    columns.forEach((c, i) => {
      if (c === '|') return; // bundles separates its columns with a bar
      row[c] = decode(file, c, fields[i]);
    });
    rows.push(row);
  }
  return { columns: columns.filter((c) => c !== '|'), rows, unparsed };
}

/**
 * /proc/net/rxrpc/stats (6.12 on): lines "Group : key=value key=value", some
 * values lists ("Jumbo-Tx : 16,0,0,..."). Repeated groups ("Why-Req-A" on two
 * lines) are merged.
 */
export function parseStats(text: string): { groups: Record<string, Record<string, number | number[] | string>>; unparsed: string[] } {
  const groups: Record<string, Record<string, number | number[] | string>> = {};
  const unparsed: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^([^:]+?)\s*:\s*(.*)$/.exec(line);
    if (!m) {
      unparsed.push(line);
      continue;
    }
    const group = (groups[m[1].trim()] ??= {});
    const body = m[2].trim();
    if (/^-?\d+(,-?\d+)*$/.test(body)) {
      group.values = body.split(',').map(Number);
      continue;
    }
    for (const item of body.split(/\s+/)) {
      const kv = /^([^=]+)=(.*)$/.exec(item);
      if (!kv) {
        unparsed.push(line);
        break;
      }
      const v = kv[2];
      group[kv[1]] = /^-?\d+$/.test(v) ? Number(v) : /^-?\d+(,-?\d+)+$/.test(v) ? v.split(',').map(Number) : v;
    }
  }
  return { groups, unparsed };
}

export interface ProcSnapshot {
  /** Where the files were read from. */
  dir: string;
  /** The files present, in the order listed. */
  files: string[];
  tables: Partial<Record<(typeof TABLE_FILES)[number], Table>>;
  stats?: ReturnType<typeof parseStats>;
  /** Files present but not understood, or unreadable, with why. */
  other: Record<string, string>;
}

/** Reads every file of a /proc/net/rxrpc directory (or a saved copy of one). */
export function readProcDir(dir: string): ProcSnapshot {
  const files = readdirSync(dir).sort();
  const snapshot: ProcSnapshot = { dir, files, tables: {}, other: {} };
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(join(dir, f), 'utf8');
    } catch (err) {
      snapshot.other[f] = `unreadable: ${(err as Error).message}`;
      continue;
    }
    if ((TABLE_FILES as readonly string[]).includes(f)) snapshot.tables[f as (typeof TABLE_FILES)[number]] = parseTable(f, text);
    else if (f === 'stats') snapshot.stats = parseStats(text);
    else snapshot.other[f] = 'not a file this command knows';
  }
  return snapshot;
}

function count<T extends string | number>(values: Iterable<T>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}

const PREALLOCATED = new Set(['SvPrealc']);

export interface Summary {
  calls?: {
    active: number;
    client: number;
    server: number;
    /** Server calls charged in accept pools, not yet used. */
    preallocated: number;
    byState: Record<string, number>;
    byService: Record<string, number>;
    aborted: Array<{ code: number; name?: string; count: number }>;
  };
  conns?: { active: number; client: number; server: number; preallocated: number; byState: Record<string, number> };
  peers?: Array<{ local: string; remote: string; use?: number; rttUs?: number; rtoUs?: number; mtu?: number; lastUseSeconds?: number }>;
  locals?: Array<{ local: string; use?: number; active?: number }>;
  bundles?: number;
  unparsedLines: number;
}

const num = (v: Cell | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

/** Calls or connections in use (not preallocated for an accept pool), by end and state. */
function byEnd(t: Table) {
  const live = t.rows.filter((r) => !PREALLOCATED.has(String(r.State)));
  return {
    live,
    active: live.length,
    client: live.filter((r) => r.End === 'Clt').length,
    server: live.filter((r) => r.End === 'Svc').length,
    preallocated: t.rows.length - live.length,
    byState: count(live.map((r) => String(r.State))),
  };
}

/** Counts and lists from a snapshot, for people. */
export function summarise(s: ProcSnapshot): Summary {
  const out: Summary = { unparsedLines: 0 };
  for (const t of Object.values(s.tables)) out.unparsedLines += t?.unparsed.length ?? 0;
  out.unparsedLines += s.stats?.unparsed.length ?? 0;
  const calls = s.tables.calls;
  if (calls) {
    const { live, ...ends } = byEnd(calls);
    const aborted = count(live.map((r) => num(r.Abort) ?? 0).filter((c) => c !== 0));
    out.calls = {
      ...ends,
      byService: count(live.map((r) => String(r.SvID))),
      aborted: Object.entries(aborted).map(([code, n]) => {
        const c = Number(code);
        const name = abortCodeName(c);
        return { code: c, ...(name ? { name } : {}), count: n };
      }),
    };
  }
  if (s.tables.conns) {
    const { live: _live, ...ends } = byEnd(s.tables.conns);
    out.conns = ends;
  }
  const peers = s.tables.peers;
  if (peers) {
    out.peers = peers.rows.map((r) => {
      const rtt = num(r.RTT);
      return {
        local: String(r.Local), remote: String(r.Remote), use: num(r.Use),
        // No RTT sample yet: 6.1 and 6.12 show 0, 7.x -1.
        rttUs: rtt !== undefined && rtt > 0 ? rtt : undefined,
        rtoUs: num(r.RTO), mtu: num(r.MTU) ?? num(r.Maxd), lastUseSeconds: num(r.LastUse),
      };
    });
  }
  const locals = s.tables.locals;
  if (locals) out.locals = locals.rows.map((r) => ({ local: String(r.Local), use: num(r.Use), active: num(r.Act) }));
  if (s.tables.bundles) out.bundles = s.tables.bundles.rows.length;
  return out;
}
