/**
 * The benchmark report as a table: each figure of every pairing with its
 * ratio to the C/C reference, the memory figures, and the targets.
 */
import { Figures, Impl } from './common';
import { PAIRINGS, Report, Row, sizeName } from './suite';

const NAMES: Record<Impl, string> = { c: 'C', binding: 'binding', api: 'api' };
export const pairName = (p: { client: Impl; server: Impl }) => `${NAMES[p.client]}/${NAMES[p.server]}`;

/** The figures the table shows per workload, and whether higher is better. */
function metrics(workload: string): Array<{ key: keyof Figures; label: string }> {
  const cpu = [{ key: 'client_cpu_ms', label: 'cpu cli' }, { key: 'server_cpu_ms', label: 'cpu srv' },
    { key: 'kernel_cpu_ms', label: 'cpu kthr' }, { key: 'irq_cpu_ms', label: 'cpu irq' }] as const;
  if (workload.startsWith('small')) {
    return [{ key: 'rate', label: 'calls/s' }, { key: 'p50_ms', label: 'p50 ms' }, { key: 'p99_ms', label: 'p99 ms' }, ...cpu];
  }
  if (workload === 'upgrade') return [{ key: 'p50_ms', label: 'p50 ms' }, { key: 'p99_ms', label: 'p99 ms' }];
  return [{ key: 'mbps', label: 'MB/s' }, { key: 'mbps_median', label: 'MB/s med' }, { key: 'mbps_min', label: 'MB/s min' },
    { key: 'mbps_max', label: 'MB/s max' }, ...cpu];
}

/** Spread (max / min call) beyond which a bulk ratio says little. */
export const SPREAD_LIMIT = 1.5;

/**
 * Why a bulk row's ratio cannot be trusted, if it cannot: fewer than 3 calls,
 * or its calls (or the C/C reference's) spread more than SPREAD_LIMIT.
 */
export function bulkWarning(report: Report, row: Row): string | undefined {
  const ref = report.rows.find((r) => r.workload === row.workload && r.client === 'c' && r.server === 'c');
  const f = row.figures;
  if (f.mbps_median === undefined) return undefined;
  const spread = (x: Figures | undefined) => (x?.mbps_min && x.mbps_max ? x.mbps_max / x.mbps_min : 1);
  const problems: string[] = [];
  if ((f.call_ms?.length ?? f.calls) < 3) problems.push(`${f.call_ms?.length ?? f.calls} call(s)`);
  if (ref && (ref.figures.call_ms?.length ?? ref.figures.calls) < 3) problems.push(`C/C: ${ref.figures.call_ms?.length ?? ref.figures.calls} call(s)`);
  if (spread(f) > SPREAD_LIMIT) problems.push(`calls from ${num(f.mbps_min)} to ${num(f.mbps_max)} MB/s`);
  if (ref && row !== ref && spread(ref.figures) > SPREAD_LIMIT) {
    problems.push(`C/C calls from ${num(ref.figures.mbps_min)} to ${num(ref.figures.mbps_max)} MB/s`);
  }
  return problems.length ? problems.join('; ') : undefined;
}

function describe(workload: string): string {
  const [kind, arg, level] = workload.split('-');
  // rxkad rows: shorter, to leave room for the level.
  if (level) return kind === 'small' ? `small ${arg} ${level}` : `${kind} ${arg.replace(/([KM])iB/, ' $1iB')} ${level}`;
  if (kind === 'small') return `small, ${arg} in flight`;
  if (kind === 'upgrade') return 'upgrade probe';
  return `${kind} ${arg.replace(/([KM])iB/, ' $1iB')}`;
}

export function num(v: number | undefined): string {
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
  /** A stable name for the target. */
  id: string;
  what: string;
  pairing: string;
  value: number;
  limit: number;
  /** How value must compare with limit. */
  op: '>=' | '<=' | '<';
  met: boolean;
  /** Why the figure cannot be trusted in this run, if it cannot (bulk spread). */
  warning?: string;
  /** Bulk targets: the worst row's workload ("upload 1 MiB"), the one the value is of. */
  row?: string;
  /** Small-call targets: why the ratio is the kernel's more than the sides' in this run, if it is (kernelBound()). */
  kernelBound?: string;
  /** For a target missed: where the rest of the time goes (from the profiles in README's Performance section). */
  explanation?: string;
}

/**
 * What the profiles showed for targets that can miss (README, Performance):
 * shown with a missed target. Keyed by target id.
 */
export const EXPLANATIONS: Record<string, string> = {
  'api-c-64': 'Profiled on 6.1 (--perf, 2026-12-03): the Client\'s process spends 717 us of CPU per call against the C ' +
    'client\'s 298, where 0.9 leaves room for 70 us more. Its kernel part alone is 156 us more (the same sendmsg and ' +
    'recvmsg per call; context switches and wake-ups, and pages zeroed for V8\'s young generation). The library\'s ' +
    'JavaScript takes 33 us, the addon 38 (its send thread included); V8\'s builtins 54, its GC 44 (its root scan ' +
    'included), its runtime 36, N-API 22, libc 40. See README, Performance.',
  'api-c-1': 'At 1 in flight each call pays two event-loop wake-ups (the send thread\'s completion, then the reply) and ' +
    'the thread hand-off (5.4 futex, 2 eventfd calls, 1 epoll_pwait per call against C\'s 3 futex and 1 poll). In the ' +
    '6.1 profile run (2026-12-03) api/C was 0.21, 0.49 and 0.61 in its three rounds while TurboFan still compiled the ' +
    'one-at-a-time paths (209 us per call in the last two); the warm-up now runs at 1 in flight too. ' +
    'See README, Performance.',
  'c-api-64': 'Profiled on 6.1 (--perf, 2026-12-03): the Server\'s process spends 667 us of CPU per call against the C ' +
    'server\'s 256, where 0.85 leaves room for 76 us more: its garbage collector 108 us (what the Server and the ' +
    'handler allocate, with 64 calls alive), V8\'s builtins 68, the library\'s JavaScript 37, N-API 26, the addon 13, ' +
    'the benchmark\'s handler 10, and 83 us more in the kernel. See README, Performance.',
  'api-api-64': 'Both Node sides on the one vCPU: 830 + 666 us of CPU per call against C/C\'s 298 + 256 (6.1, --perf, ' +
    '2026-12-03), which predicts 0.37 (measured there 0.38-0.44); 0.8 leaves the two Node processes 138 us more than ' +
    'the two C ones in all. See README, Performance.',
  'upgrade-api-c': 'A probe is one call on an exclusive connection: the Client\'s per-call cost (above) plus the probe ' +
    'gate and its result handling. What the server kernel does with it is a race (the outcome row): where C\'s probes ' +
    'are aborted and the Client\'s answered, the ratio compares an abort with an answer.',
  'memory-api': 'V8 sizing its young generation up (what V8 holds grows, the heap in use after a GC stays at about 4 MB): ' +
    'it grows the semi-space once the bytes surviving scavenges add up to its size, so the growth follows bytes ' +
    'allocated per call times bytes alive per call in flight (scripts/bench/README.md, Findings).',
  'memory-binding': 'As for the Client: the young generation sized up by V8 under the allocation rate; the heap in use ' +
    'after a GC stays flat.',
  bulk: 'A Node side handles every message of a bulk call in JavaScript (a bulk reply arrives in many messages) and a ' +
    'Client copies the reply once more when it hands it over (the chunks are views of whole receive batches, which must ' +
    'not stay pinned): on the one vCPU that CPU per MB is throughput. Rows marked unreliable are within their spread.',
};

const pairOf = (name: string) => {
  const [client, server] = name.split('/') as [Impl, Impl];
  return { client, server };
};

export function rowOf(report: Report, workload: string, pairing: string): Row | undefined {
  const p = pairOf(pairing);
  return report.rows.find((r) => r.workload === workload && r.client === p.client && r.server === p.server);
}

/** How many times the two processes' CPU per call the kernel's threads of C/C may take before its rate is the kernel's. */
export const KERNEL_BOUND = 2;

/**
 * Why a small-call ratio says more about the kernel than about the sides, if
 * it does: the kernel's threads (rxrpc's I/O threads, kworkers) took more
 * than KERNEL_BOUND times the CPU per call of C/C's two processes, so the
 * kernel sets every pairing's rate and a side's own cost moves it less
 * (stock 7.3: path-MTU discovery restarted with every incoming call).
 */
export function kernelBound(reference: Row | undefined): string | undefined {
  const f = reference?.figures;
  const kernel = f?.kernel_cpu_ms;
  const processes = (f?.client_cpu_ms ?? 0) + (f?.server_cpu_ms ?? 0);
  if (kernel === undefined || processes <= 0 || kernel <= KERNEL_BOUND * processes) return undefined;
  return `C/C's kernel threads took ${kernel.toFixed(2)} ms of CPU per call, ${(kernel / processes).toFixed(1)} times its two ` +
    `processes' ${processes.toFixed(2)}: the kernel sets the rate, and a side's own cost moves the ratio less`;
}

/** The targets, evaluated on one run (ratios to C/C of the same run). */
export function targets(report: Report): Target[] {
  const out: Target[] = [];
  const add = (t: Omit<Target, 'met' | 'explanation'>) => {
    const met = t.op === '>=' ? t.value >= t.limit : t.op === '<=' ? t.value <= t.limit : t.value < t.limit;
    // An rxkad target (id ending in its level) has the plain one's explanation.
    const plain = t.id.replace(/-(auth|encrypt)$/, '');
    const explanation = EXPLANATIONS[plain] ?? (plain.startsWith('bulk') ? EXPLANATIONS.bulk : undefined);
    out.push({ ...t, met, ...(met || !explanation ? {} : { explanation }) });
  };
  /** The bulk row with the lowest median-call ratio to C/C, and that ratio. */
  const worstBulk = (rows: Row[]) => rows.map((r) => ({ r, v: ratio(report, r, 'mbps_median') }))
    .filter((x): x is { r: Row; v: number } => x.v !== undefined)
    .reduce<{ r: Row; v: number } | undefined>((a, b) => (a === undefined || b.v < a.v ? b : a), undefined);
  const rate = (id: string, workload: string, pairing: string, limit: number, what: string) => {
    const row = rowOf(report, workload, pairing);
    const v = row && ratio(report, row, 'rate');
    const bound = kernelBound(rowOf(report, workload, 'c/c'));
    if (row && v !== undefined) add({ id, what, pairing: pairName(row), value: v, limit, op: '>=', ...(bound ? { kernelBound: bound } : {}) });
  };
  rate('api-c-64', 'small-64', 'api/c', 0.9, 'small-call rate at 64 in flight, x C/C');
  rate('api-c-1', 'small-1', 'api/c', 0.6, 'small-call rate at 1 in flight, x C/C');
  rate('c-api-64', 'small-64', 'c/api', 0.85, 'small-call rate at 64 in flight (C client, Server), x C/C');
  rate('api-api-64', 'small-64', 'api/api', 0.8, 'small-call rate at 64 in flight, x C/C');
  const probe = rowOf(report, 'upgrade', 'api/c');
  const p = probe && ratio(report, probe, 'p50_ms');
  if (p !== undefined) add({ id: 'upgrade-api-c', what: 'upgrade probe latency (p50), x C/C', pairing: 'api/C', value: p, limit: 2, op: '<=' });
  for (const pair of PAIRINGS.filter((x) => x.client !== 'c' || x.server !== 'c')) {
    // The targets are for plain calls: rxkad rows (workload-size-level) are left out.
    const bulk = report.rows.filter((r) => r.client === pair.client && r.server === pair.server && r.figures.mbps_median !== undefined &&
      r.workload.split('-').length === 2);
    const worst = worstBulk(bulk);
    if (!worst) continue;
    const warning = bulkWarning(report, worst.r);
    add({ id: `bulk-${pair.client}-${pair.server}`, what: `bulk throughput of the median call, x C/C, worst row: ${describe(worst.r.workload)}`,
      pairing: pairName(pair), value: worst.v, limit: 0.95, op: '>=', row: describe(worst.r.workload), ...(warning ? { warning } : {}) });
  }
  // rxkad, against C/C at the same level: one call at a time (the rows there are), and the worst
  // bulk row of every Node pairing at each level.
  const levels = [...new Set(report.rows.map((r) => r.workload.split('-')[2]).filter((l): l is string => l !== undefined))];
  for (const level of levels) {
    rate(`api-c-1-${level}`, `small-1-${level}`, 'api/c', 0.6, `small-call rate at 1 in flight, rxkad ${level}, x C/C at ${level}`);
    const bulk = report.rows.filter((r) => !(r.client === 'c' && r.server === 'c') && r.figures.mbps_median !== undefined &&
      r.workload.endsWith(`-${level}`));
    const worst = worstBulk(bulk);
    if (!worst) continue;
    const warning = bulkWarning(report, worst.r);
    const row = `${describe(worst.r.workload.replace(`-${level}`, ''))}, ${pairName(worst.r)}`;
    add({ id: `bulk-${level}`, what: `bulk throughput of the median call, rxkad ${level}, x C/C at ${level}, worst pairing and row: ${row}`,
      pairing: 'every Node pairing', value: worst.v, limit: 0.95, op: '>=', row, ...(warning ? { warning } : {}) });
  }
  const [first, last] = [report.parameters.memory.checkpoints[0], report.parameters.memory.checkpoints.at(-1)!];
  for (const m of report.memory.filter((x) => x.client !== 'c')) {
    const rss = m.figures.rss_mb;
    if (!rss || rss[first] === undefined || rss[last] === undefined) continue;
    add({ id: `memory-${m.client}`, what: `resident growth ${first} -> ${last} calls (default V8 flags), MB`, pairing: NAMES[m.client],
      value: rss[last] - rss[first], limit: 5, op: '<' });
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
    lines.push('cpu kthr / cpu irq: CPU time of the kernel\'s threads (rxrpc\'s I/O threads, kworkers, ksoftirqd: no process is charged) / of interrupts (/proc/stat:'
      + ' may overlap the others), same units');
    lines.push('MB/s: bytes over the time of all calls; MB/s med: the median call (a call stalled by kernel retransmission moves it little)');
    lines.push('');
  }
  const w0 = 22;
  const w1 = 10;
  const wc = 15;
  const workloads = [...new Set(report.rows.map((r) => r.workload))].filter((w) => !isScaling(w));
  if (workloads.length > 0) lines.push(pad('workload', w0) + pad('figure', w1) + PAIRINGS.map((x) => pad(pairName(x), wc)).join(''));
  const notes: string[] = [];
  const warnings: string[] = [];
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
    if (w.startsWith('small') && rows.some((row) => row?.figures.rounds)) {
      // Each round's rate: a round that V8 spent compiling shows here.
      const each = (row: Row | undefined) => {
        const rates = (row?.figures.rounds ?? []).map((f) => (f.seconds ? f.calls / f.seconds : NaN));
        if (!rates.length) return '-';
        const all = rates.map(num).join('/');
        // Where they do not fit the column: the slowest and the fastest round.
        return all.length < wc ? all : `${num(Math.min(...rates))}..${num(Math.max(...rates))}`;
      };
      lines.push(pad('', w0) + pad('rounds', w1) + rows.map((row) => pad(each(row), wc)).join(''));
    }
    if (w === 'upgrade') {
      lines.push(pad('', w0) + pad('outcome', w1) + rows.map((row) => pad(row
        ? [`${row.figures.original ?? 0}o`, `${row.figures.upgraded ?? 0}u`, `${row.figures.aborted ?? 0}a`].join(' ') : '-', wc)).join(''));
    }
    for (const row of rows) {
      const warning = row && bulkWarning(report, row);
      if (warning) warnings.push(`${describe(w)}, ${pairName(row)}: ratio unreliable (${warning})`);
      if (row && row.figures.errors > 0) {
        notes.push(`${describe(w)}, ${pairName(row)}: ${row.figures.errors} failed calls ${JSON.stringify(row.figures.failures ?? {})}`);
      }
    }
  }
  if (workloads.includes('upgrade')) lines.push('upgrade outcome: o = answered by the original service, u = upgraded, a = aborted by the server kernel');
  if (warnings.length) {
    lines.push(`warning: bulk rows whose spread makes the ratio meaningless (fewer than 3 calls, or max/min call > ${SPREAD_LIMIT}):`);
    for (const w of warnings) lines.push(`  ${w}`);
  }
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

  const scale = formatScaling(report);
  if (scale.length) lines.push(...scale, '');
  const profile = formatProfiles(report);
  if (profile.length) lines.push(...profile, '');

  lines.push('targets:');
  for (const t of targets(report)) {
    lines.push(`  ${t.met ? 'met   ' : 'MISSED'} ${pad(t.pairing, 16)} ${t.what}: ${t.value.toFixed(2)} (target ${t.op} ${t.limit})` +
      (t.warning ? ` [unreliable: ${t.warning}]` : '') + (t.kernelBound ? ` [kernel-bound: ${t.kernelBound}]` : ''));
    if (t.explanation) lines.push(`         ${t.explanation}`);
  }
  lines.push('');
  lines.push(`parameters: small calls ${p.small.rounds} round(s) of ${p.small.seconds} s after ${p.small.warmup} s warm-up per pair; `
    + p.bulk.map((b) => `bulk ${sizeName(b.size)}: ${b.rounds} round(s) of ${b.seconds > 0 ? `>= ${b.seconds} s and ` : ''}>= ${b.minCalls ?? 1} call(s)`).join(', ')
    + `; ${p.upgrade.calls} upgrade probes per pair (UPGRADE_SERVICE + EXCLUSIVE_CALL${p.upgrade.fresh ? ', each from a new local endpoint' : ''}); `
    + `memory checkpoints ${p.memory.checkpoints.join(', ')} calls; `
    + (p.security ? `rxkad (${p.security.levels.join(', ')}): small calls ${p.security.inflight} in flight, bulk ${sizeName(p.security.bulk)}, as above; ` : '')
    + `server backlog ${report.backlog}; MB = 10^6 bytes`
    + (report.clock ? `; clock: ${report.clock}` : ''));
  if (notes.length) {
    lines.push('failed calls:');
    for (const n of notes) lines.push(`  ${n}`);
  }
  return lines.join('\n');
}

/** Categories in the order the profile table shows them. */
const CATEGORIES = ['kernel', 'addon', 'JS: library', 'JS: Node', 'JS: benchmark', 'JS: other', 'V8 builtins', 'V8 interpreter',
  'V8 runtime', 'V8 GC and heap', 'Node and N-API', 'libuv', 'libc', 'libstdc++', 'rxbench', 'other', 'unknown'];

/**
 * The profiled rows (guest.js --perf): CPU per call of the client and the
 * server process by what ran, in microseconds of the guest's clock, and
 * each process's hottest symbols.
 */
export function formatProfiles(report: Report): string[] {
  const rows = report.rows.filter((r) => r.figures.profile?.calls);
  if (!rows.length) return [];
  const lines = ['where the CPU goes (perf, every CPU): microseconds per call of the client (cli) and server (srv) process, by what ran'];
  const wc = 15;
  const cols = rows.flatMap((r) => (['client', 'server'] as const).map((role) => ({ r, role })));
  lines.push(pad('in flight, pair', 18) + cols.map(({ r, role }) => pad(`${r.workload.replace('small-', '')} ${pairName(r)} ${role === 'client' ? 'cli' : 'srv'}`, wc)).join(''));
  const per = (r: Row, role: 'client' | 'server', cat?: string) => {
    const prof = r.figures.profile!;
    const ms = cat ? prof.ms[role][cat] ?? 0 : Object.values(prof.ms[role]).reduce((a, b) => a + b, 0);
    return (ms * 1000) / prof.calls!;
  };
  const threadMs = (r: Row, role: 'client' | 'server', kind: string) => ((r.figures.profile!.threads?.[role]?.[kind] ?? 0) * 1000) / r.figures.profile!.calls!;
  /** One line: the label, then each column's microseconds per call ('-' for none). */
  const line = (label: string, us: (r: Row, role: 'client' | 'server') => number) =>
    lines.push(pad(label, 18) + cols.map(({ r, role }) => pad(us(r, role) > 0 ? num(us(r, role)) : '-', wc)).join(''));
  const used = CATEGORIES.filter((cat) => cols.some(({ r, role }) => per(r, role, cat) > 0));
  // The known categories in their order, then any other the profiles hold.
  for (const cat of new Set([...used, ...cols.flatMap(({ r, role }) => Object.keys(r.figures.profile!.ms[role]))])) {
    line(cat, (r, role) => per(r, role, cat));
  }
  lines.push(pad('total', 18) + cols.map(({ r, role }) => pad(num(per(r, role)), wc)).join(''));
  // The same CPU by thread: Node's event loop (main), the addon's threads, V8's and libuv's.
  const kinds = new Set(['main', 'rxrpc-send', 'rxrpc-bulk', 'other threads',
    ...cols.flatMap(({ r, role }) => Object.keys(r.figures.profile!.threads?.[role] ?? {}))]);
  for (const kind of kinds) {
    if (cols.some(({ r, role }) => threadMs(r, role, kind) > 0)) line(`thread: ${kind}`, (r, role) => threadMs(r, role, kind));
  }
  for (const r of rows) {
    const prof = r.figures.profile!;
    for (const role of ['client', 'server'] as const) {
      // The C processes' symbols only once, for C/C.
      if (r[role] === 'c' && !(r.client === 'c' && r.server === 'c')) continue;
      lines.push(`hottest in the ${role} process, ${describe(r.workload)}, ${pairName(r)} (us per call):`);
      for (const [cat, sym, ms] of prof.top[role].slice(0, 12)) lines.push(`  ${pad(num((ms * 1000) / prof.calls!), 8)}${pad(cat, 16)}${sym}`);
    }
  }
  return lines;
}

const isScaling = (workload: string) => workload.startsWith('scale-') || workload.startsWith('peers-');

/** The scaling rows: [in flight or peers, row] per pairing, in order. */
export function scalingSeries(report: Report, prefix: 'scale' | 'peers'): Array<{ pairing: string; points: Array<{ x: number; row: Row }> }> {
  const rows = report.rows.filter((r) => r.workload.startsWith(`${prefix}-`));
  const pairs = [...new Set(rows.map((r) => pairName(r)))];
  return pairs.map((pairing) => ({
    pairing,
    points: rows.filter((r) => pairName(r) === pairing).map((row) => ({ x: Number(row.workload.split('-')[1]), row }))
      .sort((a, b) => a.x - b.x),
  }));
}

/** Memory per call in flight: the slope of the client's heap (Node) or resident size (C) from the fewest to the most in flight, KB. */
export function memoryPerCall(points: Array<{ x: number; row: Row }>, client: Impl): number | undefined {
  if (points.length < 2) return undefined;
  const a = points[0];
  const b = points[points.length - 1];
  const key = client === 'c' ? 'rss_inflight_mb' : 'heap_inflight_mb';
  const va = a.row.figures[key];
  const vb = b.row.figures[key];
  if (va === undefined || vb === undefined || b.x === a.x) return undefined;
  return ((vb - va) * 1e3) / (b.x - a.x);
}

export function formatScaling(report: Report): string[] {
  const lines: string[] = [];
  for (const prefix of ['scale', 'peers'] as const) {
    const series = scalingSeries(report, prefix);
    if (series.length === 0) continue;
    const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
    const sc = report.parameters.scale;
    lines.push(prefix === 'scale'
      ? 'how cost grows with calls in flight (spread over server ports and local endpoints: at most 16 per port, 8 per endpoint and port): calls/s, p99 ms'
      : `how cost grows with peers: ${sc.peersInflight} calls in flight from N local endpoints to ${sc.peersPorts} server ports: calls/s, p99 ms`);
    lines.push(pad(prefix === 'scale' ? 'in flight' : 'peers', 12) + xs.map((x) => pad(String(x), 16)).join('')
      + (prefix === 'scale' ? 'memory per call in flight' : ''));
    for (const s of series) {
      const cell = (x: number) => {
        const pt = s.points.find((p) => p.x === x);
        return pad(pt ? `${num(pt.row.figures.rate)} / ${num(pt.row.figures.p99_ms)}` : '-', 16);
      };
      const client = s.points[0].row.client;
      const mem = prefix === 'scale' ? memoryPerCall(s.points, client) : undefined;
      const errors = s.points.reduce((n, p) => n + p.row.figures.errors, 0);
      lines.push(pad(s.pairing, 12) + xs.map(cell).join('')
        + (mem === undefined ? '' : `${mem.toFixed(1)} KB (${client === 'c' ? 'resident' : 'V8 heap after GC'})`)
        + (errors ? `  (${errors} failed calls)` : ''));
    }
  }
  return lines;
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw) ?? 10 * p;
}

const COLOURS: Record<string, string> = {
  'C/C': '#000000', 'binding/C': '#1f77b4', 'api/C': '#d62728', 'C/binding': '#9467bd', 'C/api': '#ff7f0e',
  'binding/binding': '#8c564b', 'api/api': '#2ca02c',
};

/**
 * The scaling figures as an SVG of three panels: calls/s and p99 latency
 * against calls in flight, and calls/s against peers (log axes for counts).
 */
export function scalingSvg(report: Report): string {
  const W = 300;
  const H = 260;
  const M = { l: 58, r: 12, t: 28, b: 42 };
  const panels: string[] = [];
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const panel = (index: number, title: string, xLabel: string, prefix: 'scale' | 'peers', key: 'rate' | 'p99_ms', logY: boolean) => {
    const series = scalingSeries(report, prefix);
    const pts = series.flatMap((s) => s.points.map((p) => ({ x: p.x, y: p.row.figures[key] ?? 0 }))).filter((p) => p.y > 0);
    if (pts.length === 0) return;
    const x0 = Math.log10(Math.min(...pts.map((p) => p.x)));
    const x1 = Math.max(x0 + 1, Math.log10(Math.max(...pts.map((p) => p.x))));
    const ys = pts.map((p) => p.y);
    const yMin = logY ? Math.log10(Math.min(...ys)) - 0.1 : 0;
    const yMax = logY ? Math.log10(Math.max(...ys)) + 0.1 : Math.max(...ys) * 1.1;
    const px = (x: number) => M.l + ((Math.log10(x) - x0) / (x1 - x0)) * (W - M.l - M.r);
    const py = (y: number) => H - M.b - (((logY ? Math.log10(y) : y) - yMin) / (yMax - yMin)) * (H - M.t - M.b);
    const g: string[] = [`<g transform="translate(${index * W},0)">`];
    g.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
    g.push(`<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="#444"/>`);
    g.push(`<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="#444"/>`);
    for (const x of [...new Set(pts.map((p) => p.x))]) {
      g.push(`<text x="${px(x).toFixed(1)}" y="${H - M.b + 14}" text-anchor="middle">${x}</text>`);
    }
    g.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
    const ticks = logY
      ? Array.from({ length: 8 }, (_, i) => 10 ** (Math.floor(yMin) + i)).filter((v) => Math.log10(v) >= yMin && Math.log10(v) <= yMax)
      : Array.from({ length: 12 }, (_, i) => i * niceStep(yMax / 4)).filter((v) => v <= yMax);
    for (const v of ticks) {
      g.push(`<line x1="${M.l - 4}" y1="${py(v).toFixed(1)}" x2="${W - M.r}" y2="${py(v).toFixed(1)}" stroke="#ddd"/>`);
      g.push(`<text x="${M.l - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${num(v)}</text>`);
    }
    for (const s of series) {
      const line = s.points.filter((p) => (p.row.figures[key] ?? 0) > 0)
        .map((p) => `${px(p.x).toFixed(1)},${py(p.row.figures[key]!).toFixed(1)}`).join(' ');
      const colour = COLOURS[s.pairing] ?? '#888';
      g.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${line}"/>`);
      for (const pt of line.split(' ').filter(Boolean)) {
        const [cx, cy] = pt.split(',');
        g.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${colour}"/>`);
      }
    }
    g.push('</g>');
    panels.push(g.join('\n'));
  };
  panel(0, 'calls/s vs calls in flight', 'calls in flight', 'scale', 'rate', false);
  panel(1, 'p99 latency (ms) vs calls in flight', 'calls in flight', 'scale', 'p99_ms', true);
  panel(2, 'calls/s vs peers', `local endpoints (${report.parameters.scale.peersInflight} in flight)`, 'peers', 'rate', false);
  const pairs = [...new Set(report.rows.filter((r) => isScaling(r.workload)).map((r) => pairName(r)))];
  const legend = pairs.map((p, i) => `<g transform="translate(${M.l + i * 120},${H + 14})"><rect width="14" height="4" y="-4" ` +
    `fill="${COLOURS[p] ?? '#888'}"/><text x="20">${esc(p)}</text></g>`).join('\n');
  const title = `rxrpc benchmark, Linux ${report.kernel}, ${report.date.slice(0, 10)} (client/server)`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H + 50}" font-family="sans-serif" font-size="11">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${panels.join('\n')}\n${legend}\n` +
    `<text x="${3 * W - 10}" y="${H + 40}" text-anchor="end" fill="#555">${esc(title)}</text>\n</svg>\n`;
}
