/**
 * README's Performance tables from benchmark reports (`npm run bench --
 * --json`, one per kernel): each generated part sits between the markers
 * `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, and splice() replaces
 * what is between them, nothing else (the prose around them is written by
 * hand). bench.js --readme FILE [--from a.json,b.json] runs it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Figures } from './common';
import { bulkWarning, formatReport, formatScaling, num, pairName, ratio, rowOf, scalingSeries, scalingSvg, Target, targets } from './report';
import { PAIRINGS, Report } from './suite';

/** A report as bench.js --json prints it: which VM suite ran it, and its targets. */
export type KernelReport = Report & { suite: string; targets?: Target[] };

/** "6.1" of "6.1.0-57-amd64 (Debian 6.1.192-3)". */
export function series(report: Report): string {
  return /^(\d+\.\d+)/.exec(report.kernel)?.[1] ?? report.kernel;
}

/** How the generated parts name a report's kernel: its series, "7.3 fixed" for a run on the fixed module (suite "...+fix"). */
export function label(report: KernelReport): string {
  return `${series(report)}${report.suite.endsWith('+fix') ? ' fixed' : ''}`;
}

const release = (report: Report) => report.kernel.split(' ')[0];
const two = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(2));

/** A target's line label: "api/C: small-call rate at 64 in flight >= 0.9". */
function targetLabel(t: Target): string {
  return `${t.pairing}: ${t.what.replace(/, x C\/C.*$/, '')} ${t.op} ${t.limit}`;
}

function targetCell(t: Target | undefined): string {
  if (!t) return '-';
  return `${t.met ? 'met' : '**missed**'} ${t.value.toFixed(2)}${t.row ? ` (${t.row})` : ''}${t.warning ? ', unreliable' : ''}`
    + (t.kernelBound ? ', kernel-bound' : '');
}

/** The targets of every report side by side, one column per kernel. */
export function targetsTable(reports: KernelReport[]): string {
  const lists = reports.map((r) => r.targets ?? targets(r));
  const ids: string[] = [];
  const what = new Map<string, string>();
  for (const list of lists) {
    for (const t of list) {
      if (!what.has(t.id)) ids.push(t.id);
      what.set(t.id, targetLabel(t));
    }
  }
  const lines = [`| target | ${reports.map((r) => `${label(r)} (${release(r)})`).join(' | ')} |`, `|---|${reports.map(() => '---|').join('')}`];
  for (const id of ids) lines.push(`| ${what.get(id)} | ${lists.map((l) => targetCell(l.find((t) => t.id === id))).join(' | ')} |`);
  return lines.join('\n');
}

/** rxkad rows: workload-size-level ("small-1-auth", "upload-1MiB-encrypt"). */
const isSecured = (workload: string) => workload.split('-').length === 3;
const KINDS = ['small', 'upload', 'download'];

function securedWorkloads(report: Report): string[] {
  const all = [...new Set(report.rows.map((r) => r.workload).filter(isSecured))];
  const levels = [...new Set(all.map((w) => w.split('-')[2]))];
  return levels.flatMap((level) => all.filter((w) => w.endsWith(`-${level}`))
    .sort((a, b) => KINDS.indexOf(a.split('-')[0]) - KINDS.indexOf(b.split('-')[0])));
}

function securedName(workload: string): string {
  const [kind, arg, level] = workload.split('-');
  return kind === 'small' ? `small, ${arg} in flight, ${level}` : `${kind} ${arg.replace(/([KM])iB/, ' $1iB')} ${level}`;
}

/** The rxkad rows of every report: C/C's figure, the other pairings as ratios to it. */
export function rxkadTable(reports: KernelReport[]): string {
  const lines = [`| kernel | workload | figure | ${PAIRINGS.map(pairName).join(' | ')} |`, `|---|---|---|${PAIRINGS.map(() => '---:|').join('')}`];
  for (const report of reports) {
    for (const w of securedWorkloads(report)) {
      const key: keyof Figures = w.startsWith('small') ? 'rate' : 'mbps_median';
      const cells = PAIRINGS.map((p) => {
        const row = rowOf(report, w, `${p.client}/${p.server}`);
        if (!row) return '-';
        return p.client === 'c' && p.server === 'c' ? num(row.figures[key] as number | undefined) : two(ratio(report, row, key));
      });
      lines.push(`| ${label(report)} | ${securedName(w)} | ${key === 'rate' ? 'calls/s' : 'MB/s med'} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

const codes = (f: Figures) => Object.entries(f.failures ?? {}).sort((a, b) => b[1] - a[1]).map(([k]) => k).join(', ');

/** One line per report: C/C's rates at each level, the encrypted bulk calls, unreliable rows, failed calls. */
export function rxkadNotes(reports: KernelReport[]): string {
  return reports.map((report) => {
    const cc = (w: string) => rowOf(report, w, 'c/c')?.figures;
    const all = securedWorkloads(report);
    const levels = [...new Set(all.map((w) => w.split('-')[2]))];
    const smalls = all.filter((w) => w.startsWith('small-'));
    const inflight = smalls[0]?.split('-')[1] ?? '1';
    const parts = [`C/C at ${inflight} in flight ${num(cc(`small-${inflight}`)?.rate)} calls/s plain, `
      + levels.map((l) => `${num(cc(`small-${inflight}-${l}`)?.rate)} at ${l}`).join(', ')];
    const last = levels.at(-1);
    const bulkLast = all.filter((w) => !w.startsWith('small-') && w.endsWith(`-${last}`));
    if (last && bulkLast.length) {
      const size = bulkLast[0].split('-')[1].replace(/([KM])iB/, ' $1iB');
      const steady = report.rows.filter((r) => bulkLast.includes(r.workload) && !(r.client === 'c' && r.server === 'c') && !bulkWarning(report, r))
        .map((r) => ratio(report, r, 'mbps_median')).filter((v): v is number => v !== undefined);
      parts.push(`the C/C ${size} calls at ${last} ${bulkLast.map((w) => num(cc(w)?.mbps_median)).join(' and ')} MB/s (median)`
        + (steady.length ? `, the Node pairings ${two(Math.min(...steady))} to ${two(Math.max(...steady))} of that where their row is steady` : ''));
    }
    parts.push(`unreliable bulk rows: ${levels.map((l) => {
      const rows = report.rows.filter((r) => isSecured(r.workload) && r.workload.endsWith(`-${l}`) && r.figures.mbps_median !== undefined);
      return `${rows.filter((r) => bulkWarning(report, r)).length} of ${rows.length} at ${l}`;
    }).join(', ')}`);
    const failed = report.rows.filter((r) => isSecured(r.workload) && r.figures.errors > 0)
      .map((r) => `${r.figures.errors} in ${r.workload} ${pairName(r)} (${codes(r.figures)})`);
    parts.push(`failed calls: ${failed.length ? failed.join(', ') : 'none'}`);
    return `- ${label(report)}: ${parts.join('; ')}.`;
  }).join('\n');
}

/** Per report: the scaling plot (SVG at `svg(report)`, a path from README) and the table. */
export function scalingSection(reports: KernelReport[], svg: (report: KernelReport) => string): string {
  return reports.filter((r) => r.rows.some((row) => row.workload.startsWith('scale-'))).map((r) =>
    `${label(r)} (${r.kernel}${r.suite.endsWith('+fix') ? ', the fixed rxrpc module' : ''}):\n\n![scaling on ${label(r)}](${svg(r)})\n\n\`\`\`\n${formatScaling(r).join('\n')}\n\`\`\``).join('\n\n');
}

/** Per report: the scaling rows that had failed calls, and why. */
export function scalingFailures(reports: KernelReport[]): string {
  return reports.map((r) => {
    const failed = (['scale', 'peers'] as const).flatMap((prefix) => scalingSeries(r, prefix).flatMap((s) => s.points
      .filter((p) => p.row.figures.errors > 0)
      .map((p) => `${s.pairing} ${prefix === 'scale' ? `at ${p.x} in flight` : `from ${p.x} endpoints`}: ${p.row.figures.errors} (${codes(p.row.figures)})`)));
    return `- ${label(r)}: ${failed.length ? failed.join('; ') : 'none'}.`;
  }).join('\n');
}

/** Per report: what the server kernel did with each pairing's probes. */
export function probeOutcomes(reports: KernelReport[]): string {
  return reports.map((r) => {
    const each = PAIRINGS.map((p) => {
      const f = rowOf(r, 'upgrade', `${p.client}/${p.server}`)?.figures;
      if (!f) return undefined;
      const said = [[f.upgraded, 'upgraded'], [f.original, 'answered on the original service'], [f.aborted, 'aborted']]
        .filter(([n]) => n).map(([n, what]) => `${n} ${what}`);
      return `${pairName(p)} ${said.length ? said.join(', ') : 'no outcome'}`;
    }).filter((x) => x !== undefined);
    return `- ${label(r)}: ${each.length ? each.join('; ') : 'no probes'}.`;
  }).join('\n');
}

/** Every report's text table, folded. */
export function latestRuns(reports: KernelReport[]): string {
  return reports.map((r) => `<details><summary>${label(r)}: ${r.kernel}${r.suite.endsWith('+fix') ? ', fixed rxrpc module' : ''}, ${r.date.slice(0, 16).replace('T', ' ')} UTC</summary>\n\n`
    + `\`\`\`\n${formatReport(r)}\n\`\`\`\n\n</details>`).join('\n\n');
}

/** Every generated part by marker name. */
export function sections(reports: KernelReport[], svg: (report: KernelReport) => string): Record<string, string> {
  return {
    targets: targetsTable(reports),
    rxkad: rxkadTable(reports),
    'rxkad-notes': rxkadNotes(reports),
    scaling: scalingSection(reports, svg),
    'scaling-failures': scalingFailures(reports),
    probes: probeOutcomes(reports),
    latest: latestRuns(reports),
  };
}

/**
 * `text` with what stands between each `<!-- bench:NAME -->` and its
 * `<!-- /bench:NAME -->` replaced by parts[NAME]. A part whose markers are
 * missing, or not in order, is an error naming it; markers for which there
 * is no part are left alone.
 */
export function splice(text: string, parts: Record<string, string>): string {
  let out = text;
  for (const [name, body] of Object.entries(parts)) {
    const open = `<!-- bench:${name} -->`;
    const close = `<!-- /bench:${name} -->`;
    const a = out.indexOf(open);
    const b = out.indexOf(close);
    if (a < 0 || b < 0 || b < a) throw new Error(`README has no ${open} ... ${close} pair (in that order) for the generated ${name} part`);
    if (out.indexOf(open, a + 1) >= 0) throw new Error(`README has ${open} more than once`);
    out = `${out.slice(0, a + open.length)}\n${body}\n${out.slice(b)}`;
  }
  return out;
}

/**
 * The reports in files that bench.js --json wrote (each one report or a list
 * of them), their targets evaluated again from the rows by this tree's rules.
 * A file that is not such a report is an error naming it.
 */
export function readReports(files: string[]): KernelReport[] {
  return files.flatMap((file) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${file}: not a report bench.js --json wrote (${(err as Error).message})`);
    }
    const list = (Array.isArray(parsed) ? parsed : [parsed]) as KernelReport[];
    for (const r of list) {
      if (!r || typeof r.suite !== 'string' || typeof r.kernel !== 'string' || !Array.isArray(r.rows)) {
        throw new Error(`${file}: a report without suite, kernel and rows (bench.js --json writes them)`);
      }
    }
    return list.map((r) => ({ ...r, targets: targets(r) }));
  });
}

/** Writes a report's scaling plot as DIR/scaling-SUITE.svg, if it has the scaling rows; the path, or undefined. */
export function writeScalingSvg(report: KernelReport, dir: string): string | undefined {
  if (!report.rows.some((r) => r.workload.startsWith('scale-'))) return undefined;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `scaling-${report.suite}.svg`);
  writeFileSync(file, scalingSvg(report));
  return file;
}

/** Rewrites the generated parts of `readme` from the reports, its images pointing at DIR/scaling-SUITE.svg. */
export function writeReadme(readme: string, reports: KernelReport[], svgDir: string): void {
  const file = resolve(readme);
  const image = (r: KernelReport) => relative(dirname(file), join(resolve(svgDir), `scaling-${r.suite}.svg`)).split(sep).join('/');
  writeFileSync(file, splice(readFileSync(file, 'utf8'), sections(reports, image)));
}
