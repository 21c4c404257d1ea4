#!/usr/bin/env node
// npm run bench [-- --help] [--smoke] [--json] [--kernel bookworm[,...]] [--memory-calls N] [--only small,memory]
//                 [--wall-clock | --icount SHIFT] [--svg DIR] [--perf] [--readme FILE] [--from A.json,...]
//
// The Node binding against the C reference (scripts/bench/rxbench.c) on the
// same kernel: builds the TypeScript and rxbench on this host, then runs the
// whole suite (scripts/bench/suite.ts) in one boot of each kernel VM -- or
// directly where this kernel has AF_RXRPC -- and prints the table (or the
// report as JSON with --json, its targets list included). Progress goes to
// stderr. The scaling plot of each kernel is written as DIR/scaling-KERNEL.svg
// (default build/bench). --perf profiles every small-call job with perf in the
// guest and adds where each process's CPU went to the report.
//
// The guest's clock counts instructions (QEMU -icount shift=SHIFT, default
// 3: one instruction is 8 ns of guest time, about the speed of emulation
// here, and an idle guest jumps to its next timer), so that other VMs and
// builds on the host do not move the figures; --wall-clock runs the guest on
// real time instead.
//
// --readme FILE rewrites the generated parts of FILE's Performance section
// (between <!-- bench:NAME --> markers: scripts/bench/markdown.ts) from this
// run's reports, one column or block per kernel, and writes the scaling plots
// where FILE's images point (--svg, default build/bench). --from A.json,...
// takes the reports from files that --json wrote (one report or a list each)
// instead of running anything: `npm run bench -- --from 61.json,612.json,73.json
// --readme README.md --svg scripts/bench` regenerates README from three runs.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const log = (line) => process.stderr.write(`${line}\n`);
const usage = `usage: npm run bench [-- --help] [--smoke] [--json] [--kernel bookworm[,...]] [--memory-calls N] [--only JOB,...]
                 [--wall-clock | --icount SHIFT] [--svg DIR] [--perf] [--readme FILE] [--from A.json,...]`;
const { parseOptions, refuse, wholeNumber, kernelList } = require('./options');
const values = parseOptions('bench', usage, {
  json: { type: 'boolean' }, smoke: { type: 'boolean' }, kernel: { type: 'string' }, 'memory-calls': { type: 'string' },
  only: { type: 'string' }, perf: { type: 'boolean' }, 'wall-clock': { type: 'boolean' }, icount: { type: 'string' },
  svg: { type: 'string' }, readme: { type: 'string' }, from: { type: 'string' },
});
const json = values.json === true;
const smoke = values.smoke === true;
const kernels = kernelList('bench', usage, '--kernel', values.kernel || process.env.RXRPC_KERNEL || 'bookworm');
const memoryCalls = values['memory-calls'];
wholeNumber('bench', usage, '--memory-calls', memoryCalls);
const only = values.only;
const perf = values.perf === true;
const wallClock = values['wall-clock'] === true;
const shift = String(wholeNumber('bench', usage, '--icount', values.icount, 3, 0));
const svgDir = path.resolve(values.svg ?? path.join(root, 'build', 'bench'));
const readme = values.readme;
const from = values.from;
if (Number(shift) > 10) refuse('bench', usage, `--icount takes a shift from 0 to 10, not ${shift}`);
if (wallClock && values.icount !== undefined) refuse('bench', usage, '--wall-clock and --icount exclude each other');
// --only takes prefixes of the suite's job names (small-64, upload-16MiB, scale-256, ...).
const JOBS = ['small', 'upload', 'download', 'upgrade', 'memory', 'scale', 'peers'];
for (const prefix of only ? only.split(',') : []) {
  if (!JOBS.some((job) => prefix !== '' && (job.startsWith(prefix) || prefix.startsWith(job)))) {
    refuse('bench', usage, `--only takes prefixes of ${JOBS.join(', ')} (e.g. small-64), not ${JSON.stringify(prefix)}`);
  }
}

function buildTs() {
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'scripts', 'bench', 'tsconfig.json')], { cwd: root, stdio: ['ignore', 2, 2] });
  if (tsc.status !== 0) throw new Error('tsc failed');
}

function build() {
  buildTs();
  const binary = path.join(root, 'build', 'bench', 'rxbench');
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  const gcc = spawnSync('gcc', ['-O2', '-Wall', '-pthread', '-o', binary, path.join(root, 'scripts', 'bench', 'rxbench.c')], { stdio: ['ignore', 2, 2] });
  if (gcc.status !== 0) throw new Error('gcc failed to build rxbench');
  return binary;
}

const hostHasRxrpc = () => require('./host').hostHasRxrpc(root);

function runOne(kernel, rxbench, direct) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-bench-'));
  const file = path.join(out, 'report.json');
  const guest = [process.execPath, path.join(root, 'build', 'scripts', 'bench', 'guest.js'), rxbench, '--out', file,
    ...(smoke ? ['--smoke'] : []), ...(memoryCalls ? ['--memory-calls', memoryCalls] : []), ...(only ? ['--only', only] : []),
    ...(perf ? ['--perf', out] : [])];
  const cmd = direct ? guest : ['bash', path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--timeout', '7200', '--out', out, '--', ...guest];
  log(direct ? 'running on this kernel' : `booting the ${kernel} kernel VM`);
  const env = { ...process.env };
  if (!direct && !wallClock) {
    env.RXRPC_VM_QEMU_ARGS = `-icount shift=${shift},sleep=off`;
    env.RXRPC_BENCH_CLOCK = `instructions (QEMU -icount shift=${shift}: 1 instruction = ${2 ** Number(shift)} ns)`;
  }
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: root, stdio: ['ignore', 2, 2], env });
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new Error(`${kernel}: no report (exit status ${r.status})`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const markdown = () => require(path.join(root, 'build', 'scripts', 'bench', 'markdown.js'));

function writeSvg(report) {
  const file = markdown().writeScalingSvg(report, svgDir);
  if (file) log(`scaling plot: ${file}`);
}

function writeReadme(reports) {
  markdown().writeReadme(readme, reports, svgDir);
  log(`${readme}: Performance tables of ${reports.map((r) => r.suite).join(', ')}`);
}

try {
  if (from) {
    buildTs();
    const { formatReport } = require(path.join(root, 'build', 'scripts', 'bench', 'report.js'));
    const reports = markdown().readReports(from.split(',').filter(Boolean));
    for (const r of reports) writeSvg(r);
    if (readme) writeReadme(reports);
    else if (json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
    else for (const r of reports) console.log(`\n${formatReport(r)}`);
    process.exit(0);
  }
  const rxbench = build();
  if (perf) {
    // perf runs in the guest from this host's filesystem (Debian's linux-perf).
    const need = spawnSync('bash', ['-c', `. '${path.join(root, 'scripts', 'vm', 'common.sh')}' && need linux-perf`], { stdio: ['ignore', 2, 2] });
    if (need.status !== 0) throw new Error('--perf needs perf (Debian package linux-perf)');
  }
  const { formatReport, targets } = require(path.join(root, 'build', 'scripts', 'bench', 'report.js'));
  const direct = !process.env.RXRPC_VM_KERNEL && hostHasRxrpc();
  const reports = [];
  for (const kernel of direct ? ['host'] : kernels) {
    const report = runOne(kernel, rxbench, direct);
    reports.push({ suite: kernel, ...report, targets: targets(report) });
    writeSvg(reports.at(-1));
    if (!json) console.log(`\n${formatReport(report)}`);
  }
  if (json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
  if (readme) writeReadme(reports);
} catch (err) {
  log(`bench: ${err.message}`);
  process.exit(1);
}
