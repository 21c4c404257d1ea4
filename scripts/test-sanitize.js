#!/usr/bin/env node
// Tests with the addon built with AddressSanitizer and UndefinedBehaviorSanitizer
// (scripts/sanitize.js): every Node process of the run (jest, its workers, the
// children the tests start) loads the sanitized addon, with ASan's runtime
// preloaded. Sanitizer reports go to files in the run's output directory;
// the run passes when the tests pass, a probe process showed the sanitized
// addon and ASan's runtime loaded, and there is no report.
//
//   node scripts/test-sanitize.js [--kernel SUITE] [jest arguments...]
//       the integration tests in one boot of the kernel VM (default bookworm);
//       boots a VM: run it under flock /tmp/rxrpc-vm.lock
//   node scripts/test-sanitize.js --host [jest arguments...]
//       the host unit tests (no VM)
//
// npm run test:sanitize runs the first; CI runs it after npm test (.ci/run).
// Ends with a line "N passed, N failed" like npm test.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { build, sanitizeEnv } = require('./sanitize');
const { readReport, judgeRetries, RETRY_ENV } = require('./jest-report');

const root = path.join(__dirname, '..');
const jestBin = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const KERNEL = 'bookworm';
// Tests that judge resident size are left out: under ASan it is its
// allocator's (redzones, a quarantine of freed blocks), not the library's.
// Measured: the lifecycle test's growth over 1,000 Clients was 8.3 MB in one
// sanitized run and 20.4 MB in the next (limit 10; without ASan 8.0 to 8.7).
//
// And rxgen's split Store on stock 6.1, which its kernel stalls in this run
// (5 of 6 sanitized runs on 2026-12-02; traced with the rxrpc events): the
// server's recvmsg() sends an ACK itself after proposing it without queueing
// the call's work, which leaves RXRPC_CALL_EV_ACK set (only
// rxrpc_process_call() clears it), so every later ACK proposal, the PING
// RESPONSEs the client asks for included, finds it "already scheduled" and
// none is sent; the client, its window cut to 2 by a spurious retransmission,
// waits, and the server's 1 s request timer aborts the call. The test runs
// unsanitized on 6.12 and 7.3 (kernel/README.md, defect 9).
//
// And calls.test's 1000 calls with 64 in flight, server in the same process:
// some call ended by 6.1's expiry path (RX_CALL_DEAD or RX_CALL_TIMEOUT) in 4
// of 6 sanitized runs on 2026-12-02, once in both tries of one run; not
// traced. It runs unsanitized on 6.12 and 7.3.
const LEFT_OUT = new RegExp(['resident growth', 'a split call streams data to the server after the arguments',
  '1000 calls with 64 in flight to one peer, server in the same process'].join('|'));
const SKIP_NAMES = `^(?!.*(?:${LEFT_OUT.source}))`;

/** Tests of the report that SKIP_NAMES left out (jest counts them as skipped). */
function leftOut(file) {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    return r.testResults.flatMap((t) => t.assertionResults).filter((a) => a.status === 'pending' && LEFT_OUT.test(a.fullName)).length;
  } catch {
    return 0;
  }
}

/** Sanitizer reports in `dir`: one file per process that had any (ASan's and UBSan's log_path). */
function reports(dir) {
  return fs.readdirSync(dir).filter((f) => /^(asan|ubsan)\.\d+/.test(f)).map((f) => path.join(dir, f));
}

// Run with the sanitizer's environment before the tests: loads the library and
// writes what this process has mapped of the addon and of ASan's runtime,
// so that a run in which neither was loaded cannot pass.
const PROBE = [
  "const fs = require('node:fs');",
  `require(${JSON.stringify(path.join(root, 'build', 'lib', 'native.js'))}).loadNative();`,
  "const maps = fs.readFileSync('/proc/self/maps', 'utf8');",
  'fs.writeFileSync(process.argv[1], JSON.stringify({ addon: maps.includes(process.env.RXRPC_ADDON), asan: /libasan/.test(maps), ubsan: /libubsan/.test(maps) }));',
].join(' ');

function readProbe(file) {
  try {
    const p = JSON.parse(fs.readFileSync(file, 'utf8'));
    return p.addon && p.asan && p.ubsan ? undefined : `the sanitized addon or its runtime was not loaded: ${JSON.stringify(p)}`;
  } catch {
    return 'the probe process wrote nothing (it did not start, or failed to load the addon)';
  }
}

/**
 * Runs the tests; resolves with a summary row as scripts/test.js prints them.
 * `kernel` undefined: the host unit tests.
 */
async function runSanitized({ tmp, kernel, extra = [], step }) {
  const where = `${kernel ?? 'host'} sanitize`;
  step(`${kernel ? `kernel ${kernel}: integration` : 'host: unit'} tests with the addon built with ASan and UBSan`);
  let addon;
  try {
    addon = build();
  } catch (err) {
    return { where, passed: 0, failed: 1, skipped: 0, note: `sanitized build failed: ${err.message}` };
  }
  const outDir = fs.mkdtempSync(path.join(tmp, `${kernel ?? 'host'}-sanitize-`));
  const logs = path.join(outDir, 'sanitizer');
  fs.mkdirSync(logs);
  const vars = [...Object.entries(sanitizeEnv(logs)).map(([k, v]) => `${k}=${v}`), ...(kernel ? [`${RETRY_ENV}=1`] : [])];
  const probeFile = path.join(outDir, 'probe.json');
  const jestJson = path.join(outDir, 'jest.json');
  const jest = [process.execPath, jestBin, ...(kernel ? ['--config', path.join(root, 'test', 'jest.integration.config.js'), '--runInBand'] : []),
    '--ci', '--forceExit', '--json', '--outputFile', jestJson, '--testNamePattern', SKIP_NAMES, ...extra];
  // One shell with the sanitizer's environment: the probe, then jest (in the VM: one boot for both).
  const guest = ['env', ...vars, 'sh', '-c', '"$0" -e "$1" "$2" || echo "sanitize: the probe process failed" >&2; shift 2; exec "$@"',
    process.execPath, PROBE, probeFile, ...jest];
  const [cmd, args] = kernel
    ? ['bash', [path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--out', outDir, '--', ...guest]]
    : [guest[0], guest.slice(1)];
  const started = Date.now();
  const status = await new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: 'inherit' });
    child.on('close', (code) => resolve(code === null ? 1 : code));
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  const found = reports(logs);
  for (const f of found) {
    console.log(`\nsanitizer report ${path.basename(f)}:`);
    console.log(fs.readFileSync(f, 'utf8'));
  }
  const probe = readProbe(probeFile);
  const omitted = leftOut(jestJson);
  const report = readReport(jestJson);
  const retries = judgeRetries(report, jestJson, 'sanitize');
  const note = `${path.relative(root, addon)}, ${found.length} sanitizer reports, ${seconds} s` +
    `${omitted ? `, ${omitted} left out (${LEFT_OUT.source})` : ''}${retries}${probe ? `; ${probe}` : ''}`;
  if (report) report.skipped -= omitted;
  if (!report) return { where, passed: 0, failed: 1, skipped: 0, note: `no jest report (status ${status}); ${note}` };
  if (status !== 0 && report.failed === 0) report.failed = 1;
  report.failed += found.length + (probe ? 1 : 0);
  return { where, ...report, note };
}

module.exports = { runSanitized, leftOut };

if (require.main === module) {
  let argv = process.argv.slice(2);
  let kernel = KERNEL;
  if (argv[0] === '--host') {
    kernel = undefined;
    argv = argv.slice(1);
  } else if (argv[0] === '--kernel') {
    kernel = argv[1];
    argv = argv.slice(2);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-sanitize-'));
  runSanitized({ tmp, kernel, extra: argv, step: (t) => console.log(`\n=== ${t}`) }).then((r) => {
    console.log(`\n${r.where}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}  ${r.note}`);
    console.log(`${r.passed} passed, ${r.failed + r.skipped} failed`);
    process.exit(r.failed === 0 && r.skipped === 0 ? 0 : 1);
  });
}
