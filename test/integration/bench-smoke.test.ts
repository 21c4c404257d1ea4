import { formatReport, scalingSvg, targets } from '../../scripts/bench/report';
import { PAIRINGS, Report, runSuite, SMOKE, sizeName } from '../../scripts/bench/suite';
import { cProgram } from './helpers';

/** rxbench as `npm run bench` builds it on the host, or compiled here when that one is missing or stale. */
const rxbench = () => cProgram('scripts/bench/rxbench.c', 'build/bench/rxbench', ['-pthread']);

describe('benchmark smoke run (every workload, every pairing, tiny counts)', () => {
  let report: Report;
  beforeAll(async () => {
    report = await runSuite({ smoke: true, rxbench: rxbench(), basePort: 18410, log: () => {} });
  }, 600000);

  const workloads = [
    ...SMOKE.small.inflight.map((n) => `small-${n}`),
    ...SMOKE.bulk.flatMap((b) => [`upload-${sizeName(b.size)}`, `download-${sizeName(b.size)}`]),
    'upgrade',
  ];

  test.each(workloads)('%s has a row with positive figures for every client/server pairing', (workload) => {
    for (const p of PAIRINGS) {
      const row = report.rows.find((r) => r.workload === workload && r.client === p.client && r.server === p.server);
      expect({ pairing: p, figures: row?.figures }).toEqual({ pairing: p, figures: expect.objectContaining({ calls: expect.any(Number) }) });
      const f = row!.figures;
      expect({ pairing: p, calls: f.calls > 0 }).toEqual({ pairing: p, calls: true });
      const keys = workload.startsWith('small') ? (['rate', 'p50_ms', 'p99_ms'] as const)
        : workload === 'upgrade' ? (['p50_ms', 'p99_ms'] as const) : (['mbps'] as const);
      for (const key of keys) expect({ pairing: p, key, positive: (f[key] ?? 0) > 0 }).toEqual({ pairing: p, key, positive: true });
      if (workload === 'upgrade') expect((f.upgraded ?? 0) + (f.original ?? 0) + (f.aborted ?? 0)).toBe(SMOKE.upgrade.calls);
    }
  });

  test('memory has a positive resident size at every checkpoint for the C, binding and api clients', () => {
    expect(report.memory.map((m) => m.client)).toEqual(['c', 'binding', 'api']);
    for (const m of report.memory) {
      for (const c of SMOKE.memory.checkpoints) expect({ client: m.client, c, rss: (m.figures.rss_mb?.[c] ?? 0) > 0 }).toEqual({ client: m.client, c, rss: true });
    }
  });

  test('bulk rows give the spread of their calls: min <= median <= max, and at least 3 calls where asked', () => {
    for (const b of SMOKE.bulk) {
      for (const kind of ['upload', 'download']) {
        for (const p of PAIRINGS) {
          const f = report.rows.find((r) => r.workload === `${kind}-${sizeName(b.size)}` && r.client === p.client && r.server === p.server)!.figures;
          expect({ p, ordered: f.mbps_min! <= f.mbps_median! && f.mbps_median! <= f.mbps_max! }).toEqual({ p, ordered: true });
          expect({ p, calls: f.call_ms!.length >= (b.minCalls ?? 1) }).toEqual({ p, calls: true });
        }
      }
    }
  });

  test('scaling rows: every pairing asked for at every number in flight and of peers, calls made, and a plot of them', () => {
    const names = [...SMOKE.scale.inflight.map((n) => `scale-${n}`), ...SMOKE.scale.peers.map((n) => `peers-${n}`)];
    for (const name of names) {
      for (const pair of SMOKE.scale.pairs) {
        const [client, server] = pair.split('/');
        const row = report.rows.find((r) => r.workload === name && r.client === client && r.server === server);
        expect({ name, pair, rate: (row?.figures.rate ?? 0) > 0 }).toEqual({ name, pair, rate: true });
      }
    }
    const svg = scalingSvg(report);
    expect(svg.startsWith('<svg')).toBe(true);
    expect((svg.match(/<polyline/g) ?? []).length).toBe(3 * SMOKE.scale.pairs.length);
  });

  test('the targets list names each target with its measured value', () => {
    const ids = targets(report).map((t) => t.id);
    expect(ids).toEqual(expect.arrayContaining(['api-c-64', 'api-c-1', 'c-api-64', 'api-api-64', 'upgrade-api-c', 'bulk-api-c', 'memory-api']));
    for (const t of targets(report)) expect({ id: t.id, finite: Number.isFinite(t.value) }).toEqual({ id: t.id, finite: true });
  });

  test('the report names the kernel and prints a table row for every workload', () => {
    expect(report.kernel).toContain(process.env.RXRPC_VM_KERNEL ?? '');
    const table = formatReport(report);
    for (const label of ['small, 1 in flight', 'small, 64 in flight', 'upload 256 KiB', 'download 64 KiB', 'upgrade probe', 'growth',
      'how cost grows with calls in flight', 'MB/s min', 'targets:']) {
      expect(table).toContain(label);
    }
  });
});
