#!/usr/bin/env node
// The integration tests on one kernel with the addon built with
// AddressSanitizer and UndefinedBehaviorSanitizer (scripts/sanitize.js), in
// one VM boot: every process of the run (jest and the Node children the
// tests start) loads the sanitized addon, with ASan's runtime preloaded.
// Sanitizer reports go to files in the run's output directory; the run
// passes when the tests pass and there is none.
//
//   node scripts/test-sanitize.js [--kernel SUITE] [jest arguments...]
//   (npm test runs it on bookworm, after the kernel matrix)
//
// Boots a VM: run it under flock /tmp/rxrpc-vm.lock.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { build, sanitizeEnv } = require('./sanitize');

const root = path.join(__dirname, '..');
const jestBin = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const KERNEL = 'bookworm';

/** Sanitizer reports in `dir`: one file per process that had any (ASan's and UBSan's log_path). */
function reports(dir) {
  return fs.readdirSync(dir).filter((f) => /^(asan|ubsan)\.\d+/.test(f)).map((f) => path.join(dir, f));
}

/** Runs the suite; resolves with a summary row for scripts/test.js. */
async function runSanitized({ tmp, kernel = KERNEL, extra = [], readReport, step }) {
  step(`kernel ${kernel}: integration tests with the addon built with ASan and UBSan`);
  let addon;
  try {
    addon = build();
  } catch (err) {
    return { where: `${kernel} sanitize`, passed: 0, failed: 1, skipped: 0, note: `sanitized build failed: ${err.message}` };
  }
  const outDir = fs.mkdtempSync(path.join(tmp, `${kernel}-sanitize-`));
  const logs = path.join(outDir, 'sanitizer');
  fs.mkdirSync(logs);
  const env = sanitizeEnv(logs);
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const args = [
    path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--out', outDir, '--',
    'env', ...vars, process.execPath, jestBin, '--config', path.join(root, 'test', 'jest.integration.config.js'),
    '--ci', '--runInBand', '--forceExit', '--json', '--outputFile', path.join(outDir, 'jest.json'), ...extra,
  ];
  const started = Date.now();
  const status = await new Promise((resolve) => {
    const child = spawn('bash', args, { cwd: root, stdio: 'inherit' });
    child.on('close', (code) => resolve(code === null ? 1 : code));
  });
  const found = reports(logs);
  for (const f of found) {
    console.log(`\nsanitizer report ${path.basename(f)}:`);
    console.log(fs.readFileSync(f, 'utf8'));
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  const report = readReport(path.join(outDir, 'jest.json'));
  const note = `${path.relative(root, addon)}, ${found.length} sanitizer reports, ${seconds} s`;
  if (!report) return { where: `${kernel} sanitize`, passed: 0, failed: 1, skipped: 0, note: `no jest report (status ${status}); ${note}` };
  if (status !== 0 && report.failed === 0) report.failed = 1;
  report.failed += found.length;
  return { where: `${kernel} sanitize`, ...report, note };
}

module.exports = { runSanitized };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const kernel = argv[0] === '--kernel' ? argv[1] : KERNEL;
  const extra = argv[0] === '--kernel' ? argv.slice(2) : argv;
  const readReport = (file) => {
    try {
      const r = JSON.parse(fs.readFileSync(file, 'utf8'));
      return { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests };
    } catch {
      return undefined;
    }
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-sanitize-'));
  runSanitized({ tmp, kernel, extra, readReport, step: (t) => console.log(`\n=== ${t}`) }).then((r) => {
    console.log(`\n${r.where}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}  ${r.note}`);
    process.exit(r.failed === 0 && r.skipped === 0 ? 0 : 1);
  });
}
