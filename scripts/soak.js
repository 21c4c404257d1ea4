#!/usr/bin/env node
// npm run soak [-- --calls N] [--every N] [--inflight N] [--kernel SUITE] [--json]
// npm run soak -- --short    the short run CI can afford: 20,000 calls, sampled every 4,000
//
// A million (by default) small calls from a Client to a Server in another
// process (scripts/soak-run.ts), in one boot of the kernel VM, sampling both
// processes every 100,000 calls after a full GC: resident size, V8 heap in use,
// open descriptors. Prints the samples as a table and whether they stayed flat
// after the warm-up (the first two samples): resident size within RSS_MB,
// heap within HEAP_MB, descriptors unchanged. Exits 1 when they did not, or
// when any call failed. Boots a VM: run it under flock /tmp/rxrpc-vm.lock.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { parseOptions, wholeNumber, kernelOne } = require('./options');
const usage = 'usage: npm run soak [-- --help] [--short] [--calls N] [--every N] [--inflight N] [--kernel SUITE] [--json]';
const values = parseOptions('soak', usage, {
  short: { type: 'boolean' }, calls: { type: 'string' }, every: { type: 'string' }, inflight: { type: 'string' },
  kernel: { type: 'string' }, json: { type: 'boolean' },
});
const short = values.short === true;
const calls = wholeNumber('soak', usage, '--calls', values.calls, short ? 20000 : 1000000);
const every = wholeNumber('soak', usage, '--every', values.every, short ? 4000 : Math.min(100000, calls));
const inflight = wholeNumber('soak', usage, '--inflight', values.inflight, 16);
const kernel = kernelOne('soak', usage, '--kernel', values.kernel ?? 'bookworm');
const RSS_MB = 10;
const HEAP_MB = 2;
const log = (line) => process.stderr.write(`${line}\n`);

/** Growth of each figure over the samples after the warm-up, and whether it stayed flat. */
function verdict(report) {
  const after = report.samples.filter((s) => s.calls >= 2 * every);
  const range = (proc, key) => {
    const v = after.map((s) => s[proc][key]);
    return v.length ? Math.max(...v) - Math.min(...v) : 0;
  };
  const figures = {};
  let flat = after.length >= 2;
  for (const proc of ['client', 'server']) {
    figures[proc] = { rssMB: range(proc, 'rssMB'), heapMB: range(proc, 'heapMB'), fds: range(proc, 'fds') };
    flat = flat && figures[proc].rssMB <= RSS_MB && figures[proc].heapMB <= HEAP_MB && figures[proc].fds === 0;
  }
  return { flat, figures, from: after[0]?.calls };
}

function table(report) {
  const lines = [
    '| calls | s | calls/s | client RSS MB | client heap MB | client fds | server RSS MB | server heap MB | server fds |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of report.samples) {
    lines.push(`| ${s.calls.toLocaleString('en-US')} | ${s.seconds.toFixed(0)} | ${s.calls ? s.rate.toFixed(0) : '-'} | ` +
      `${s.client.rssMB.toFixed(1)} | ${s.client.heapMB.toFixed(2)} | ${s.client.fds} | ` +
      `${s.server.rssMB.toFixed(1)} | ${s.server.heapMB.toFixed(2)} | ${s.server.fds} |`);
  }
  return lines.join('\n');
}

function main() {
  for (const [name, v] of [['--calls', calls], ['--every', every], ['--inflight', inflight]]) {
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  }
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: ['ignore', 2, 2] });
  if (tsc.status !== 0) throw new Error('tsc failed');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-soak-'));
  const file = path.join(out, 'soak.json');
  const guest = [process.execPath, '--expose-gc', path.join(root, 'build', 'scripts', 'soak-run.js'),
    '--calls', String(calls), '--every', String(every), '--inflight', String(inflight), '--out', file];
  log(`booting the ${kernel} kernel VM for ${calls} calls`);
  const r = spawnSync('bash', [path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--timeout', '14400', '--out', out, '--', ...guest],
    { cwd: root, stdio: ['ignore', 2, 2] });
  let report;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new Error(`no report (exit status ${r.status})`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  const v = verdict(report);
  if (values.json) {
    console.log(JSON.stringify({ ...report, verdict: v }, null, 2));
  } else {
    console.log(`soak: Linux ${report.kernel}, Node ${report.node}, ${report.date}, ${report.calls.toLocaleString('en-US')} calls, ${report.inflight} in flight`);
    console.log(table(report));
    console.log(`${report.ok} ok, ${report.bad} bad, failed: ${JSON.stringify(report.failed)}`);
    const f = v.figures;
    console.log(`from ${v.from?.toLocaleString('en-US')} calls on: client RSS ${f.client.rssMB.toFixed(1)} MB, heap ${f.client.heapMB.toFixed(2)} MB, ` +
      `fds ${f.client.fds}; server RSS ${f.server.rssMB.toFixed(1)} MB, heap ${f.server.heapMB.toFixed(2)} MB, fds ${f.server.fds} ` +
      `(flat: RSS within ${RSS_MB} MB, heap within ${HEAP_MB} MB, descriptors unchanged): ${v.flat ? 'flat' : 'NOT FLAT'}`);
  }
  return v.flat && report.bad === 0 && Object.keys(report.failed).length === 0 && report.ok === report.calls;
}

try {
  process.exit(main() ? 0 : 1);
} catch (err) {
  log(`soak: ${err.message}`);
  process.exit(1);
}
