#!/usr/bin/env node
// npm run conformance [-- --json] [--n N] [--kernels a,b]: how each kernel of
// the matrix behaves as an upgrading server, measured with this library's
// client and server (scripts/conformance-run.ts), one VM boot per kernel:
// Debian's stock rxrpc module and the fixed one built from kernel/ ("+fix",
// built on first use by scripts/kernel/build-module.sh, progress on stderr).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const STOCK = ['bookworm', 'bookworm-backports', 'trixie-backports'];
const { parseOptions, wholeNumber, kernelList } = require('./options');
const usage = 'usage: npm run conformance [-- --help] [--json] [--n N] [--kernels SUITE[,...]]';
const values = parseOptions('conformance', usage, { json: { type: 'boolean' }, n: { type: 'string' }, kernels: { type: 'string' } });
const json = values.json === true;
const n = wholeNumber('conformance', usage, '--n', values.n, 50);
const kernels = kernelList('conformance', usage, '--kernels', values.kernels || process.env.RXRPC_KERNELS || [...STOCK, ...STOCK.map((k) => `${k}+fix`)].join(','));
const runner = path.join(root, 'build', 'scripts', 'conformance-run.js');
const log = (...a) => (json ? console.error(...a) : console.log(...a));

const build = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(1);

const reports = [];
let failed = false;
for (const kernel of kernels) {
  log(`kernel ${kernel}: ${n} probes...`);
  const r = spawnSync('bash', [path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--', process.execPath, runner, String(n)], {
    cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8',
  });
  const line = (r.stdout || '').trim().split('\n').pop();
  try {
    reports.push({ suite: kernel, ...JSON.parse(line) });
  } catch {
    failed = true;
    log(`kernel ${kernel}: no report (status ${r.status})`);
  }
}

if (json) {
  console.log(JSON.stringify(reports, null, 2));
} else {
  const fmt = (o) => Object.entries(o).map(([k, v]) => `${v} ${k}`).join(', ') || '-';
  console.log(`\nUpgrade conformance, ${new Date().toISOString().slice(0, 10)}, ${os.arch()}, under QEMU (TCG)`);
  console.log('| kernel | rxrpc module | probes | upgraded | original ID | aborted | failed | control: no-upgrade server | 2503 after 52, same endpoint |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of reports) {
    const u = r.upgradeServer;
    const p = r.plainServer;
    const s = r.serviceAfterService;
    const wrong = Object.entries(s.wrong).map(([svc, k]) => `${k} by ${svc}`);
    const sfailed = Object.entries(s.failed).map(([what, k]) => `${k} ${what}`);
    const services = [`${s.right} of ${s.trials} by 2503`, ...wrong, ...sfailed].join(', ');
    console.log(`| ${r.kernel} (${r.suite}) | ${r.module} | ${u.probes} | ${u.upgraded} | ${u.original} | ${fmt(u.aborted)} | ${fmt(u.failed)} | ${p.original} of ${p.probes} original | ${services} |`);
  }
}
process.exit(failed ? 1 : 0);
