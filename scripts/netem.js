#!/usr/bin/env node
// npm run netem [-- --kernel-a SUITE] [--kernel-b SUITE] [--small N] [--bulk N] [--only fault,...] [--json]
//
// Calls across the virtual link between two kernel VMs (scripts/vm/pair.sh)
// under each fault netem puts on it (scripts/pair/faults.ts): by default
// 10,000 small calls and 20 bulk calls of 1 MiB each way per fault, client in
// VM A, server in VM B. Prints the table: completion, typed failures,
// latency and throughput per fault; exits 1 when a call ended wrongly (bytes
// not intact, an untyped error, later than its timeout) or stayed pending.
// Boots two VMs: run it under flock /tmp/rxrpc-vm.lock.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { parseOptions, refuse, wholeNumber, kernelOne } = require('./options');
const usage = 'usage: npm run netem [-- --help] [--kernel-a SUITE] [--kernel-b SUITE] [--small N] [--bulk N] [--only FAULT,...] [--json]';
const values = parseOptions('netem', usage, {
  'kernel-a': { type: 'string' }, 'kernel-b': { type: 'string' }, small: { type: 'string' }, bulk: { type: 'string' },
  only: { type: 'string' }, json: { type: 'boolean' },
});
for (const o of ['small', 'bulk']) wholeNumber('netem', usage, `--${o}`, values[o]);
const kernelA = kernelOne('netem', usage, '--kernel-a', values['kernel-a'] ?? 'bookworm');
const kernelB = kernelOne('netem', usage, '--kernel-b', values['kernel-b'] ?? 'bookworm');
const log = (line) => process.stderr.write(`${line}\n`);

const pct = (o) => `${((100 * o.ok) / o.calls).toFixed(o.ok === o.calls ? 0 : 1)}% (${o.ok}/${o.calls})`;
const failed = (o) => Object.entries(o.failed).map(([k, n]) => `${n} ${k}`).join(', ') || '-';

function table(report) {
  const lines = [
    `netem: client ${report.client.kernel} (Debian ${report.client.version}), server ${report.server.kernel} (Debian ${report.server.version}), ` +
      `${report.date.slice(0, 10)}; per fault ${report.sizes.smallCalls} small calls (${report.sizes.smallConcurrency} in flight, up to 512 bytes each way, ` +
      `timeout ${report.sizes.smallTimeout / 1000} s) and ${report.sizes.bulkCalls} bulk calls (${report.sizes.bulkConcurrency} in flight, ` +
      `${report.sizes.bulkBytes / 1048576} MiB each way, timeout ${report.sizes.bulkTimeout / 1000} s)`,
    '',
    '| fault (netem on both NICs) | small: completed | small: failed (typed) | p50 ms | p99 ms | calls/s | bulk: completed | bulk: failed (typed) | p50 s | p99 s | MB/s |',
    '|---|---|---|---:|---:|---:|---|---|---:|---:|---:|',
  ];
  for (const r of report.rows) {
    const s = r.small;
    const b = r.bulk;
    lines.push(`| ${r.fault} (\`${r.netem}\`) | ${pct(s)} | ${failed(s)} | ${s.p50.toFixed(0)} | ${s.p99.toFixed(0)} | ${(s.ok / s.seconds).toFixed(0)} | ` +
      `${pct(b)} | ${failed(b)} | ${(b.p50 / 1000).toFixed(1)} | ${(b.p99 / 1000).toFixed(1)} | ${(b.bytes / b.seconds / 1e6).toFixed(2)} |`);
  }
  const wrong = report.rows.flatMap((r) => [r.small, r.bulk].flatMap((o) => o.problems.map((p) => `${r.fault}: ${p}`)));
  if (wrong.length) lines.push('', 'problems:', ...wrong.map((w) => `  ${w}`));
  return lines.join('\n');
}

function main() {
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: ['ignore', 2, 2] });
  if (tsc.status !== 0) throw new Error('tsc failed');
  const names = require(path.join(root, 'build', 'scripts', 'pair', 'faults.js')).FAULTS.map((f) => f.name);
  for (const name of values.only?.split(',') ?? []) {
    if (!names.includes(name)) refuse('netem', usage, `--only takes fault names (${names.map((n) => JSON.stringify(n)).join(', ')}), not ${JSON.stringify(name)}`);
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-netem-'));
  const file = path.join(out, 'a', 'netem.json');
  const run = [process.execPath, path.join(root, 'build', 'scripts', 'netem-run.js'), '--out', file,
    ...['small', 'bulk', 'only'].flatMap((o) => (values[o] !== undefined ? [`--${o}`, values[o]] : []))];
  const agent = [process.execPath, path.join(root, 'build', 'scripts', 'pair', 'agent.js')];
  const r = spawnSync('bash', [path.join(root, 'scripts', 'vm', 'pair.sh'), '--kernel-a', kernelA,
    '--kernel-b', kernelB, '--timeout', '10800', '--out', out, '--', ...run, ':::', ...agent],
  { cwd: root, stdio: ['ignore', 2, 2] });
  let report;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new Error(`no report (pair.sh exit status ${r.status})`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  console.log(values.json ? JSON.stringify(report, null, 2) : table(report));
  const ok = report.rows.every((row) => [row.small, row.bulk].every((o) => o.bad === 0 && o.pending === 0));
  return ok && r.status === 0;
}

try {
  process.exit(main() ? 0 : 1);
} catch (err) {
  log(`netem: ${err.message}`);
  process.exit(1);
}
