/**
 * The benchmark report as a table: each figure of every pairing with its
 * ratio to the C/C reference, the memory figures, and the targets.
 */
import { Figures, Impl } from './common';
import { PAIRINGS, Report, Row, sizeName } from './suite';

const NAMES: Record<Impl, string> = { c: 'C', binding: 'binding', api: 'api' };
const pairName = (p: { client: Impl; server: Impl }) => `${NAMES[p.client]}/${NAMES[p.server]}`;

/** The figures the table shows per workload, and whether higher is better. */
function metrics(workload: string): Array<{ key: keyof Figures; label: string }> {
  const cpu = [{ key: 'client_cpu_ms', label: 'cpu cli' }, { key: 'server_cpu_ms', label: 'cpu srv' }] as const;
  if (workload.startsWith('small')) {
    return [{ key: 'rate', label: 'calls/s' }, { key: 'p50_ms', label: 'p50 ms' }, { key: 'p99_ms', label: 'p99 ms' }, ...cpu];
  }
  if (workload === 'upgrade') return [{ key: 'p50_ms', label: 'p50 ms' }, { key: 'p99_ms', label: 'p99 ms' }];
  return [{ key: 'mbps', label: 'MB/s' }, { key: 'mbps_median', label: 'MB/s med' }, ...cpu];
}

function describe(workload: string): string {
  const [kind, arg, level] = workload.split('-');
  // rxkad rows: shorter, to leave room for the level.
  if (level) return kind === 'small' ? `small ${arg} ${level}` : `${kind} ${arg.replace(/([KM])iB/, ' $1iB')} ${level}`;
  if (kind === 'small') return `small, ${arg} in flight`;
  if (kind === 'upgrade') return 'upgrade probe';
  return `${kind} ${arg.replace(/([KM])iB/, ' $1iB')}`;
}

function num(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Node/C ratios of one row: figure / C-C figure of the same workload. */
export function ratio(report: Report, row: Row, key: keyof Figures): number | undefined {
  const ref = report.rows.find((r) => r.workload === row.workload && r.client === 'c' && r.server === 'c');
  const a = row.figures[key] as number | undefined;
  const b = ref?.figures[key] as number | undefined;
  return a !== undefined && b ? a / b : undefined;
}

export interface Target {
  what: string;
  pairing: string;
  value: number;
  limit: number;
  met: boolean;
}

/** The issue's targets, evaluated for every pairing with a Node side. */
export function targets(report: Report): Target[] {
  const out: Target[] = [];
  const nodePairs = PAIRINGS.filter((p) => p.client !== 'c' || p.server !== 'c');
  const small = report.rows.filter((r) => r.workload === `small-${Math.max(...report.parameters.small.inflight)}`);
  for (const p of nodePairs) {
    const row = small.find((r) => r.client === p.client && r.server === p.server);
    const v = row && ratio(report, row, 'rate');
    if (v !== undefined) out.push({ what: 'small-call rate at 64 in flight, x C', pairing: pairName(p), value: v, limit: 0.8, met: v >= 0.8 });
  }
  for (const [key, how] of [['mbps', 'all calls'], ['mbps_median', 'median call']] as const) {
    for (const p of nodePairs) {
      // The targets are for plain calls: rxkad rows (workload-size-level) are left out.
      const bulk = report.rows.filter((r) => r.client === p.client && r.server === p.server && r.figures[key] !== undefined &&
        r.workload.split('-').length === 2);
      const ratios = bulk.map((r) => ({ r, v: ratio(report, r, key) })).filter((x) => x.v !== undefined);
      if (ratios.length === 0) continue;
      const worst = ratios.reduce((a, b) => (b.v! < a.v! ? b : a));
      out.push({ what: `bulk throughput (${how}), x C, worst: ${describe(worst.r.workload)}`, pairing: pairName(p), value: worst.v!, limit: 0.9, met: worst.v! >= 0.9 });
    }
  }
  const [first, last] = [report.parameters.memory.checkpoints[0], report.parameters.memory.checkpoints.at(-1)!];
  for (const m of report.memory.filter((x) => x.client !== 'c')) {
    const rss = m.figures.rss_mb;
    if (!rss || rss[first] === undefined || rss[last] === undefined) continue;
    const growth = rss[last] - rss[first];
    out.push({ what: `resident growth ${first} -> ${last} calls, MB`, pairing: NAMES[m.client], value: growth, limit: 10, met: growth < 10 });
  }
  return out;
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s + ' '.repeat(n - s.length);
}

export function formatReport(report: Report): string {
  const lines: string[] = [];
  const p = report.parameters;
  lines.push(`rxrpc benchmark${report.smoke ? ' (smoke)' : ''}: Linux ${report.kernel}, ${report.date.slice(0, 16).replace('T', ' ')} UTC, Node ${report.node}, ${Math.round(report.seconds)} s`);
  if (report.rows.length > 0) {
    lines.push('pairs are client/server; binding = Endpoint (the native layer), api = Client / Server; (ratio) = figure / C/C figure');
    lines.push('cpu cli / cpu srv: CPU time (user + system, all threads) of the client / server process, ms per call (per MB for bulk)');
    lines.push('MB/s: bytes over the time of all calls; MB/s med: the median call (a call stalled by kernel retransmission moves it little)');
    lines.push('');
  }
  const w0 = 22;
  const w1 = 10;
  const wc = 15;
  const workloads = [...new Set(report.rows.map((r) => r.workload))];
  if (workloads.length > 0) lines.push(pad('workload', w0) + pad('figure', w1) + PAIRINGS.map((x) => pad(pairName(x), wc)).join(''));
  const notes: string[] = [];
  for (const w of workloads) {
    const rows = PAIRINGS.map((x) => report.rows.find((r) => r.workload === w && r.client === x.client && r.server === x.server));
    metrics(w).forEach((m, i) => {
      const cells = rows.map((row) => {
        if (!row) return pad('-', wc);
        const v = row.figures[m.key] as number | undefined;
        const q = row.client === 'c' && row.server === 'c' ? undefined : ratio(report, row, m.key);
        return pad(`${num(v)}${q === undefined ? '' : ` (${q.toFixed(2)})`}`, wc);
      });
      lines.push(pad(i === 0 ? describe(w) : '', w0) + pad(m.label, w1) + cells.join(''));
    });
    if (w === 'upgrade') {
      lines.push(pad('', w0) + pad('outcome', w1) + rows.map((row) => pad(row
        ? [`${row.figures.original ?? 0}o`, `${row.figures.upgraded ?? 0}u`, `${row.figures.aborted ?? 0}a`].join(' ') : '-', wc)).join(''));
    }
    for (const row of rows) {
      if (row && row.figures.errors > 0) {
        notes.push(`${describe(w)}, ${pairName(row)}: ${row.figures.errors} failed calls ${JSON.stringify(row.figures.failures ?? {})}`);
      }
    }
  }
  if (workloads.includes('upgrade')) lines.push('upgrade outcome: o = answered by the original service, u = upgraded, a = aborted by the server kernel');
  if (workloads.length > 0) lines.push('');

  if (report.memory.length > 0) {
    const [first, last] = [p.memory.checkpoints[0], p.memory.checkpoints.at(-1)!];
    const row = (label: string, unit: string, cell: (f: Figures) => string) =>
      lines.push(pad(label, w0) + pad(unit, w1) + report.memory.map((m) => pad(cell(m.figures), wc)).join(''));
    lines.push(`memory: client resident size (Node: after a full GC; the V8 heap in use; what V8 holds for its heap), against the C server, ${p.memory.inflight} in flight`);
    lines.push(pad('', w0 + w1) + report.memory.map((m) => pad(NAMES[m.client], wc)).join(''));
    for (const c of p.memory.checkpoints) row(`after ${c.toLocaleString('en')} calls`, 'MB', (f) => num(f.rss_mb?.[c]));
    for (const c of p.memory.checkpoints) row(`  heap, ${c.toLocaleString('en')} calls`, 'MB', (f) => num(f.heap_mb?.[c]));
    for (const c of p.memory.checkpoints) row(`  V8 holds, ${c.toLocaleString('en')}`, 'MB', (f) => num(f.committed_mb?.[c]));
    row(`growth ${first.toLocaleString('en')} -> ${last.toLocaleString('en')}`, 'MB', (f) => (f.rss_mb ? (f.rss_mb[last] - f.rss_mb[first]).toFixed(2) : '-'));
    row('rate', 'calls/s', (f) => num(f.seconds ? f.calls / f.seconds : undefined));
    lines.push('');
    for (const m of report.memory) {
      if (m.figures.errors > 0) notes.push(`memory, ${NAMES[m.client]}: ${m.figures.errors} failed calls ${JSON.stringify(m.figures.failures ?? {})}`);
    }
  }

  lines.push('targets:');
  for (const t of targets(report)) {
    lines.push(`  ${t.met ? 'met   ' : 'MISSED'} ${pad(t.pairing, 16)} ${t.what}: ${t.value.toFixed(2)} (target ${t.what.includes('MB') ? '<' : '>='} ${t.limit})`);
  }
  lines.push('');
  lines.push(`parameters: small calls ${p.small.rounds} round(s) of ${p.small.seconds} s after ${p.small.warmup} s warm-up per pair; `
    + p.bulk.map((b) => `bulk ${sizeName(b.size)}: ${b.rounds} round(s) of ${b.seconds > 0 ? `>= ${b.seconds} s` : 'one call'}`).join(', ')
    + `; ${p.upgrade.calls} upgrade probes per pair (exclusive connections); memory checkpoints ${p.memory.checkpoints.join(', ')} calls; `
    + (p.security ? `rxkad (${p.security.levels.join(', ')}): small calls ${p.security.inflight} in flight, bulk ${sizeName(p.security.bulk)}, as above; ` : '')
    + `server backlog ${report.backlog}; MB = 10^6 bytes`);
  if (notes.length) {
    lines.push('failed calls:');
    for (const n of notes) lines.push(`  ${n}`);
  }
  return lines.join('\n');
}
