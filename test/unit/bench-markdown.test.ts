// README's generated Performance parts (scripts/bench/markdown.ts): what each
// part says of a report, and that splice() touches only what is between a
// part's markers.
import { Figures, Impl } from '../../scripts/bench/common';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KernelReport, label, latestRuns, probeOutcomes, readReports, rxkadNotes, rxkadTable, scalingFailures, scalingSection, series, splice, targetsTable,
  writeReadme, writeScalingSvg,
} from '../../scripts/bench/markdown';
import { KERNEL_BOUND, kernelBound } from '../../scripts/bench/report';
import { FULL, PAIRINGS } from '../../scripts/bench/suite';

type Rows = Array<[workload: string, client: Impl, server: Impl, figures: Partial<Figures>]>;

function report(kernel: string, suite: string, rows: Rows, memory: KernelReport['memory'] = []): KernelReport {
  return {
    suite, kernel, date: '2026-12-04T02:00:00.000Z', node: 'v20.20.2', smoke: false, parameters: FULL, backlog: 31, seconds: 1000, memory,
    rows: rows.map(([workload, client, server, figures]) => ({ workload, client, server, figures: { calls: 10, errors: 0, ...figures } })),
  };
}

/** A bulk row's figures: `median` MB/s, calls from min to max. */
const bulk = (median: number, min = median, max = median): Partial<Figures> =>
  ({ mbps: median, mbps_median: median, mbps_min: min, mbps_max: max, call_ms: [1, 2, 3] });

const r61 = report('6.1.0-57-amd64 (Debian 6.1.192-3)', 'bookworm', [
  ['small-64', 'c', 'c', { rate: 1000 }],
  ['small-64', 'api', 'c', { rate: 570 }],
  ['small-64', 'c', 'api', { rate: 900 }],
  ['small-1', 'c', 'c', { rate: 1300 }],
  ['small-1', 'api', 'c', { rate: 780 }],
  ['upload-1MiB', 'c', 'c', bulk(4)],
  ['upload-1MiB', 'binding', 'c', bulk(3.52)],
  ['download-1MiB', 'c', 'c', bulk(4)],
  ['download-1MiB', 'binding', 'c', bulk(2, 1, 4)],
  ['upgrade', 'c', 'c', { p50_ms: 2, original: 2, aborted: 8 }],
  ['upgrade', 'api', 'c', { p50_ms: 5, upgraded: 1, aborted: 9 }],
  ['small-1-auth', 'c', 'c', { rate: 1198 }],
  ['small-1-auth', 'api', 'c', { rate: 599 }],
  ['upload-1MiB-auth', 'c', 'c', bulk(3.39, 1, 4)],
  ['upload-1MiB-auth', 'api', 'api', { ...bulk(3.39), errors: 1, failures: { RX_CALL_TIMEOUT: 1 } }],
  ['small-1-encrypt', 'c', 'c', { rate: 1162 }],
  ['upload-1MiB-encrypt', 'c', 'c', bulk(0.78)],
  ['upload-1MiB-encrypt', 'binding', 'c', bulk(0.78)],
  ['upload-1MiB-encrypt', 'api', 'c', bulk(0.858)],
  ['scale-1', 'c', 'c', { rate: 1402, p99_ms: 1.08, rss_inflight_mb: 1 }],
  ['scale-64', 'c', 'c', { rate: 1224, p99_ms: 22.3, rss_inflight_mb: 1.0448, errors: 48, failures: { 'abort -3': 8, 'abort -1': 40 } }],
  ['peers-10', 'api', 'api', { rate: 403, p99_ms: 400, errors: 1, failures: { RX_PROTOCOL_ERROR: 1 } }],
], [{ client: 'binding', figures: { calls: 1, errors: 0, rss_mb: { 1000: 50, 100000: 69.1 } } }]);

const r73 = report('7.3.4+deb13-amd64 (Debian 7.3.4-1~bpo13+1)', 'trixie-backports', [
  ['small-64', 'c', 'c', { rate: 300, kernel_cpu_ms: 1.53, client_cpu_ms: 0.2, server_cpu_ms: 0.15 }],
  ['small-64', 'api', 'c', { rate: 279 }],
  ['small-1', 'c', 'c', { rate: 260 }],
  ['upgrade', 'c', 'c', { p50_ms: 2, aborted: 10 }],
]);

describe('bench markdown: targets', () => {
  test('one column per kernel, each target on one line; a target a report lacks is a dash; bulk cells name their worst row and say when it is unreliable', () => {
    const lines = targetsTable([r61, r73]).split('\n');
    expect(lines[0]).toBe('| target | 6.1 (6.1.0-57-amd64) | 7.3 (7.3.4+deb13-amd64) |');
    expect(lines[1]).toBe('|---|---|---|');
    // 7.3's C/C spent 1.53 ms per call in the kernel's threads against 0.35 in its processes.
    expect(lines).toContain('| api/C: small-call rate at 64 in flight >= 0.9 | **missed** 0.57 | met 0.93, kernel-bound |');
    expect(lines).toContain('| api/C: small-call rate at 1 in flight >= 0.6 | met 0.60 | - |');
    expect(lines).toContain('| C/api: small-call rate at 64 in flight (C client, Server) >= 0.85 | met 0.90 | - |');
    expect(lines).toContain('| api/C: upgrade probe latency (p50) <= 2 | **missed** 2.50 | - |');
    // 2 of 4 MB/s is the worse row, and its calls spread from 1 to 4 MB/s.
    expect(lines).toContain('| binding/C: bulk throughput of the median call >= 0.95 | **missed** 0.50 (download 1 MiB), unreliable | - |');
    expect(lines).toContain('| binding: resident growth 1000 -> 100000 calls (default V8 flags), MB < 5 | **missed** 19.10 | - |');
    // rxkad, against C/C at the same level: the one-at-a-time rate, and the worst bulk row of any Node pairing.
    expect(lines).toContain('| api/C: small-call rate at 1 in flight, rxkad auth >= 0.6 | **missed** 0.50 | - |');
    expect(lines).toContain('| every Node pairing: bulk throughput of the median call, rxkad auth >= 0.95 | met 1.00 (upload 1 MiB, api/api), unreliable | - |');
    expect(lines).toContain('| every Node pairing: bulk throughput of the median call, rxkad encrypt >= 0.95 | met 1.00 (upload 1 MiB, binding/C) | - |');
    // No api/C row at encrypt in 6.1's report, no rxkad rows at all in 7.3's: no such target.
    expect(lines.some((l) => l.includes('rxkad encrypt >= 0.6'))).toBe(false);
  });
});

describe('bench report: kernel-bound small-call ratios', () => {
  const cc = (kernel: number | undefined, client = 0.2, server = 0.15) =>
    ({ workload: 'small-64', client: 'c', server: 'c', figures: { calls: 1, errors: 0, client_cpu_ms: client, server_cpu_ms: server, kernel_cpu_ms: kernel } }) as const;

  test(`flagged only when C/C's kernel threads took more than ${KERNEL_BOUND} times its processes' CPU per call`, () => {
    expect(kernelBound(cc(1.53))).toBe("C/C's kernel threads took 1.53 ms of CPU per call, 4.4 times its two processes' 0.35: "
      + "the kernel sets the rate, and a side's own cost moves the ratio less");
    expect(kernelBound(cc(0.7))).toBeUndefined();
    expect(kernelBound(cc(0.71))).toBeDefined();
    // A report from before the kernel's threads were measured, or without C/C's row or CPU figures.
    expect(kernelBound(cc(undefined))).toBeUndefined();
    expect(kernelBound(undefined)).toBeUndefined();
    expect(kernelBound(cc(1, 0, 0))).toBeUndefined();
  });
});

describe('bench markdown: rxkad', () => {
  test('C/C as its figure, every other pairing as a ratio, levels in order and small before bulk', () => {
    const lines = rxkadTable([r61]).split('\n');
    expect(lines[0]).toBe(`| kernel | workload | figure | ${PAIRINGS.map((p) => `${p.client === 'c' ? 'C' : p.client}/${p.server === 'c' ? 'C' : p.server}`).join(' | ')} |`);
    expect(lines.slice(2)).toEqual([
      '| 6.1 | small, 1 in flight, auth | calls/s | 1198 | - | 0.50 | - | - | - | - |',
      '| 6.1 | upload 1 MiB auth | MB/s med | 3.39 | - | - | - | - | - | 1.00 |',
      '| 6.1 | small, 1 in flight, encrypt | calls/s | 1162 | - | - | - | - | - | - |',
      '| 6.1 | upload 1 MiB encrypt | MB/s med | 0.78 | 1.00 | 1.10 | - | - | - | - |',
    ]);
  });

  test('the notes: plain and secured rates, the encrypted bulk calls, unreliable rows per level, failed calls with their codes', () => {
    expect(rxkadNotes([r61])).toBe('- 6.1: C/C at 1 in flight 1300 calls/s plain, 1198 at auth, 1162 at encrypt; the C/C 1 MiB calls at encrypt '
      + '0.78 MB/s (median), the Node pairings 1.00 to 1.10 of that where their row is steady; unreliable bulk rows: 2 of 2 at auth, '
      + '0 of 3 at encrypt; failed calls: 1 in upload-1MiB-auth api/api (RX_CALL_TIMEOUT).');
  });
});

describe('bench markdown: scaling, probes, latest runs', () => {
  test('a plot and the table per kernel that ran the scaling rows, and nothing for one that did not', () => {
    const text = scalingSection([r61, r73], (r) => `scripts/bench/scaling-${r.suite}.svg`);
    expect(text.startsWith('6.1 (6.1.0-57-amd64 (Debian 6.1.192-3)):\n\n![scaling on 6.1](scripts/bench/scaling-bookworm.svg)\n\n```\nhow cost grows')).toBe(true);
    expect(text).toMatch(/^C\/C {9}1402 \/ 1\.08 {5}1224 \/ 22\.3 {5}0\.7 KB \(resident\) {2}\(48 failed calls\)$/m);
    expect(text).not.toContain('7.3');
    expect(text.endsWith('```')).toBe(true);
  });

  test('failed scaling calls by row, the commonest code first; a kernel without any says none', () => {
    expect(scalingFailures([r61, r73])).toBe('- 6.1: C/C at 64 in flight: 48 (abort -1, abort -3); api/api from 10 endpoints: 1 (RX_PROTOCOL_ERROR).\n- 7.3: none.');
  });

  test('probe outcomes per pairing, only the outcomes seen', () => {
    expect(probeOutcomes([r61, r73])).toBe('- 6.1: C/C 2 answered on the original service, 8 aborted; api/C 1 upgraded, 9 aborted.\n- 7.3: C/C 10 aborted.');
  });

  test('each report folded under its kernel and date', () => {
    const text = latestRuns([r73]);
    expect(text.startsWith('<details><summary>7.3: 7.3.4+deb13-amd64 (Debian 7.3.4-1~bpo13+1), 2026-12-04 02:00 UTC</summary>\n\n```\nrxrpc benchmark: Linux 7.3.4')).toBe(true);
    expect(text.endsWith('```\n\n</details>')).toBe(true);
  });

  test('series is the major and minor version of the kernel; a run on the fixed module is labelled so everywhere', () => {
    expect([series(r61), series(r73)]).toEqual(['6.1', '7.3']);
    const fixed = { ...r73, suite: 'trixie-backports+fix' };
    expect([label(r73), label(fixed)]).toEqual(['7.3', '7.3 fixed']);
    expect(targetsTable([r73, fixed]).split('\n')[0]).toBe('| target | 7.3 (7.3.4+deb13-amd64) | 7.3 fixed (7.3.4+deb13-amd64) |');
    expect(probeOutcomes([fixed])).toBe('- 7.3 fixed: C/C 10 aborted.');
    expect(latestRuns([fixed])).toMatch(/^<details><summary>7\.3 fixed: 7\.3\.4\+deb13-amd64 \(Debian 7\.3\.4-1~bpo13\+1\), fixed rxrpc module, 2026-12-04/);
  });
});

describe('bench markdown: splice', () => {
  const readme = 'intro\n<!-- bench:targets -->\nold table\n<!-- /bench:targets -->\nprose\n<!-- bench:probes -->\n- old\n<!-- /bench:probes -->\nend\n';

  test('replaces what is between each part\'s markers and leaves the rest as it was', () => {
    expect(splice(readme, { targets: '| new |', probes: '- new' }))
      .toBe('intro\n<!-- bench:targets -->\n| new |\n<!-- /bench:targets -->\nprose\n<!-- bench:probes -->\n- new\n<!-- /bench:probes -->\nend\n');
    // Splicing again gives the same text: nothing accumulates.
    const once = splice(readme, { targets: 'x' });
    expect(splice(once, { targets: 'x' })).toBe(once);
  });

  test('a part without its markers, with them out of order or twice, is an error naming it', () => {
    expect(() => splice(readme, { scaling: 'x' })).toThrow('README has no <!-- bench:scaling --> ... <!-- /bench:scaling --> pair (in that order) for the generated scaling part');
    expect(() => splice('<!-- /bench:a -->\n<!-- bench:a -->', { a: 'x' })).toThrow('<!-- bench:a -->');
    expect(() => splice('<!-- bench:a -->\n<!-- /bench:a -->\n<!-- bench:a -->', { a: 'x' })).toThrow('README has <!-- bench:a --> more than once');
  });
});

describe('bench markdown: files (bench.js --from, --readme)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-md-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('reads one report or a list per file, and evaluates the targets again from the rows', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ ...r61, targets: [{ id: 'stale' }] }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify([r73]));
    const reports = readReports([join(dir, 'a.json'), join(dir, 'b.json')]);
    expect(reports.map((r) => r.suite)).toEqual(['bookworm', 'trixie-backports']);
    expect(reports[0].targets!.map((t) => t.id)).toContain('api-c-64');
    expect(reports[0].targets!.map((t) => t.id)).not.toContain('stale');
  });

  test('a file that is not JSON, or a report without its suite (the guest\'s own report.json), is an error naming the file', () => {
    writeFileSync(join(dir, 'bad.json'), 'rxrpc benchmark: Linux');
    const { suite: _, ...guest } = r61;
    writeFileSync(join(dir, 'guest.json'), JSON.stringify(guest));
    expect(() => readReports([join(dir, 'bad.json')])).toThrow(`${join(dir, 'bad.json')}: not a report bench.js --json wrote`);
    expect(() => readReports([join(dir, 'guest.json')])).toThrow(`${join(dir, 'guest.json')}: a report without suite, kernel and rows`);
    expect(() => readReports([join(dir, 'missing.json')])).toThrow(`${join(dir, 'missing.json')}: not a report`);
  });

  test('writes the scaling plot only for a report with the scaling rows, and README\'s images point at it', () => {
    const svgDir = join(dir, 'scripts', 'bench');
    expect(writeScalingSvg(r73, svgDir)).toBeUndefined();
    const svg = writeScalingSvg(r61, svgDir)!;
    expect(svg).toBe(join(svgDir, 'scaling-bookworm.svg'));
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg [^>]*>/);
    const readme = join(dir, 'README.md');
    const marked = Object.fromEntries(['targets', 'rxkad', 'rxkad-notes', 'scaling', 'scaling-failures', 'probes', 'latest']
      .map((name) => [name, `<!-- bench:${name} -->\nold\n<!-- /bench:${name} -->`]));
    writeFileSync(readme, `# Performance\n\n${Object.values(marked).join('\n\nprose\n\n')}\n`);
    writeReadme(readme, [r61, r73], svgDir);
    const text = readFileSync(readme, 'utf8');
    expect(text).toContain('![scaling on 6.1](scripts/bench/scaling-bookworm.svg)');
    expect(text).toContain('| target | 6.1 (6.1.0-57-amd64) | 7.3 (7.3.4+deb13-amd64) |');
    expect(text).not.toContain('\nold\n');
    expect(text.split('\nprose\n').length).toBe(7);
  });
});
