#!/usr/bin/env node
// npm test: build, run the host-side unit tests, then the integration tests
// inside a kernel VM for each kernel of the matrix (one boot per kernel), then
// the tests across two kernel VMs on one link (scripts/test-pairs.js), and
// close with a line "N passed, N failed" totalled over everything.
//
// Environment:
//   RXRPC_KERNELS   comma-separated kernels (default: MATRIX below); a kernel
//                   name with "+fix" boots with the fixed rxrpc module (kernel/)
//                   and runs only the tests about upgrade and service IDs
//   RXRPC_PAIRS     kernel pairs "A:B" for the two-VM tests, or none (scripts/test-pairs.js)
//   RXRPC_SANITIZE_KERNEL  the kernel whose run uses the addon built with ASan
//                   and UBSan (scripts/test-sanitize.js; default bookworm), or none
//   RXRPC_RETRY_KERNEL_TIMEOUTS  set to 1 for the VM runs: a failed test runs
//                   once more (scripts/jest-report.js judges the second run)
//   RXRPC_HOST_ONLY=1  skip the VM (the summary then says so and fails)
//   JEST_ARGS       extra jest arguments for both runs (e.g. a test name filter)
// It sets RXRPC_PACK_DIR for both runs: where scripts/pack-test.js installed
// the packed package (out/pack-test), for the tests of the installed copy.
'use strict';
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const jestBin = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
// Debian's kernels with their stock rxrpc module, then one boot of each with
// the module built from kernel/ (scripts/kernel/build-module.sh, cached under
// ~/.cache/rxrpc-vm; 7.3's is built in a trixie root made with debootstrap).
const MATRIX = ['bookworm', 'bookworm-backports', 'trixie-backports', 'bookworm+fix', 'bookworm-backports+fix', 'trixie-backports+fix'];
// With the fixed module: the reproducer, kafs, a short conformance run and the
// tests about upgrade, probes and service IDs (test files, then test names).
// The churn test (1,000 local endpoints, about 40 s) only on 6.12, the kernel
// whose stock module it panics and whose fixed module carries the check.
// 'paused': the request timeout, which the fixed 6.12 and 7.x modules keep in milliseconds.
// 'burst': secured calls at once on a new connection, which BUG() stock 6.1 (collected on bookworm+fix only).
// 'RxGK': the fixed 7.x module is built with RxGK and lets MSG_OOB through (rxgk.test.ts).
// 'path-MTU': PINGs per call, which the fixed 7.3 module no longer spends restarting path-MTU discovery.
const FIX_NAMES = 'upgrade|probe|reproducer|kafs|conformance|service ID|two services|churn|paused|burst|RxGK|path-MTU';
const FIX_FILES = ['upgrade-fix', 'kafs', 'conformance', 'api', 'capture', 'upgrade-wire', 'cmsg', 'options', 'openafs', 'calls', 'rxkad-burst', 'rxgk'];
const fixTests = (kernel) => [...FIX_FILES, ...(kernel === 'bookworm-backports+fix' ? ['churn'] : [])]
  .map((name) => `/integration/${name}\\.test\\.js$`).concat('-t', FIX_NAMES);
// Heavy tests, each on one kernel only (on every kernel when that one is not in the list): the
// benchmark's smoke test (about 2 min) and lifecycle's 1,000 Clients (about 110 s on 6.12, 170 s on 7.3).
const ONE_KERNEL = { RXRPC_BENCH_SMOKE: 'trixie-backports', RXRPC_COLLECT_TEST: 'bookworm-backports' };
const kernels = (process.env.RXRPC_KERNELS || MATRIX.join(','))
  .split(',')
  .map((k) => k.trim())
  .filter(Boolean);
const extra = process.env.JEST_ARGS ? process.env.JEST_ARGS.split(' ').filter(Boolean) : [];

function step(title) {
  console.log(`\n=== ${title}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  return r.status === null ? 1 : r.status;
}

const { readReport, judgeRetries, RETRY_ENV } = require('./jest-report');

function runInVm(kernel, outDir) {
  return new Promise((resolve) => {
    const args = [
      path.join(root, 'scripts', 'vm', 'run.sh'),
      '--kernel', kernel, '--out', outDir, '--',
      // Note which kernel ran the tests (uname -r and Debian's package version).
      'sh', '-c', 'echo "$RXRPC_VM_KERNEL ($(sed -n "s/.*Debian \\([^ ]*\\).*/\\1/p" /proc/version))$(cat /sys/module/rxrpc/version 2>/dev/null | sed "s/^/, rxrpc /")" >"$RXRPC_VM_OUT/kernel"; exec "$@"', 'sh',
      process.execPath, jestBin, '--config', path.join(root, 'test', 'jest.integration.config.js'),
      // --forceExit: a handle left open by a failing test must not keep the VM up until its timeout.
      '--ci', '--runInBand', '--forceExit', '--json', '--outputFile', path.join(outDir, 'jest.json'),
      ...(kernel.endsWith('+fix') ? fixTests(kernel) : []), ...extra,
    ];
    const child = spawn('bash', args, { cwd: root, stdio: 'inherit' });
    child.on('close', (code) => resolve(code === null ? 1 : code));
  });
}

async function main() {
  const results = [];
  const started = Date.now();

  step('build');
  if (run(process.execPath, [path.join(root, 'scripts', 'install.js')]) !== 0 ||
      run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']) !== 0) {
    console.log('\nbuild failed');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }

  // The package as a user gets it, packed and installed once for the tests of
  // the installed copy on the host and in each VM (which see out/ read-only).
  step('pack: npm pack, then npm ci of the tarball in a fresh project');
  const packDir = path.join(root, 'out', 'pack-test');
  const pack = require('./pack-test.js').packAndInstall(packDir);
  console.log(pack.ok
    ? `packed in ${pack.packSeconds} s, installed in ${pack.installSeconds} s into ${pack.consumer}`
    : `pack: ${pack.error}\n(the tests of the installed package fail with this)`);
  process.env.RXRPC_PACK_DIR = packDir;

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-test-'));
  step('host: unit tests');
  const hostJson = path.join(tmp, 'host.json');
  const hostStatus = run(process.execPath, [jestBin, '--ci', '--json', '--outputFile', hostJson, ...extra]);
  const host = readReport(hostJson) || { passed: 0, failed: 1, skipped: 0 };
  if (hostStatus !== 0 && host.failed === 0) host.failed = 1;
  results.push({ where: 'host', ...host, note: `${os.release()} (no VM)` });

  if (process.env.RXRPC_HOST_ONLY === '1') {
    results.push({ where: 'vm', passed: 0, failed: 1, skipped: 0, note: 'RXRPC_HOST_ONLY=1: integration tests not run' });
  } else {
    step('test dependencies (tshark, OpenAFS)');
    if (run('bash', [path.join(root, 'scripts', 'test-deps.sh')]) !== 0) {
      console.log('vm: could not install the packages the integration tests need; they will fail');
    }
    const sanitizeKernel = process.env.RXRPC_SANITIZE_KERNEL || 'bookworm';
    // A failed test runs once more; scripts/jest-report.js says which second passes count.
    process.env[RETRY_ENV] = '1';
    for (const kernel of kernels) {
      for (const [name, only] of Object.entries(ONE_KERNEL)) process.env[name] = kernel === only || !kernels.includes(only) ? '1' : '0';
      if (kernel === sanitizeKernel) {
        // The whole suite with the sanitized addon, in this kernel's one boot.
        results.push(await require('./test-sanitize').runSanitized({ tmp, kernel, extra, step }));
        continue;
      }
      step(`kernel ${kernel}: integration tests in the VM`);
      const outDir = fs.mkdtempSync(path.join(tmp, `${kernel}-`));
      const status = await runInVm(kernel, outDir);
      const jestJson = path.join(outDir, 'jest.json');
      const report = readReport(jestJson, kernel.endsWith('+fix') ? new RegExp(FIX_NAMES, 'i') : undefined);
      const retries = judgeRetries(report, jestJson, kernel);
      let version = '';
      try {
        version = fs.readFileSync(path.join(outDir, 'kernel'), 'utf8').trim();
      } catch {
        // The guest writes it when it boots; without it the VM never started.
      }
      if (!report) {
        const why = status >= 125 ? `VM failed (status ${status}), see "vm:" lines above` : `no jest report (status ${status})`;
        results.push({ where: kernel, passed: 0, failed: 1, skipped: 0, note: why });
      } else {
        if (status !== 0 && report.failed === 0) report.failed = 1;
        results.push({ where: kernel, ...report, note: `${version || 'kernel version unknown'}${retries}` });
      }
    }
    // Two kernels at once on one virtual link: cross-kernel and netem tests.
    results.push(...await require('./test-pairs').runPairs({ tmp, kernels, extra, step }));
  }

  step(`summary (${Math.round((Date.now() - started) / 1000)} s)`);
  for (const r of results) {
    const skipped = r.skipped ? `, ${r.skipped} skipped` : '';
    console.log(`${r.where.padEnd(20)} ${String(r.passed).padStart(4)} passed, ${String(r.failed).padStart(3)} failed${skipped}  ${r.note}`);
  }
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed + r.skipped, 0);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
