'use strict';
// The part of npm test that boots two kernels at once (scripts/vm/pair.sh):
// the cross-kernel tests (test/pair/cross-kernel.test.ts) on each pair, and
// the netem tests (test/pair/netem.test.ts) on the first pair only. Jest runs
// in VM A, the agent (scripts/pair/agent.ts) in VM B.
//
// Environment:
//   RXRPC_PAIRS  comma-separated pairs "A:B" (default: PAIRS below, those of
//                them whose kernels are all in RXRPC_KERNELS when that is set);
//                "none" runs no pair
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { readReport, judgeRetries, RETRY_ENV } = require('./jest-report');

const root = path.join(__dirname, '..');
const jestBin = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
// 6.1 against 7.x both ways, and netem on that link: about 5 minutes of npm
// test (291 s measured, 2026-12-02); then the same kernels with the patched
// module on both sides, for the upgrade probes only (servers that can
// upgrade). Other pairs by RXRPC_PAIRS, e.g. bookworm-backports:bookworm for
// 6.12 against 6.1 (cross-kernel only).
const PAIRS = ['bookworm:trixie-backports', 'bookworm+fix:trixie-backports+fix'];
// The tests a pair with a patched module runs (jest -t).
const FIXED_PAIR_TESTS = 'upgrade probe';

/** The jest name filter for a pair: the probes where a side runs the patched module. */
const namesFor = (pair) => (pair.includes('+fix') ? FIXED_PAIR_TESTS : undefined);

/** The pairs to run, and why there are none when there are none. */
function pairsToRun(kernels) {
  const env = process.env.RXRPC_PAIRS;
  if (env === 'none') return { pairs: [], why: 'RXRPC_PAIRS=none' };
  if (env) return { pairs: env.split(',').map((p) => p.trim()).filter(Boolean) };
  if (!process.env.RXRPC_KERNELS) return { pairs: PAIRS };
  const pairs = PAIRS.filter((p) => p.split(':').every((k) => kernels.includes(k)));
  return { pairs, why: pairs.length ? undefined : `no pair of ${PAIRS.join(', ')} within RXRPC_KERNELS` };
}

function runPair(pair, first, names, outDir, extra) {
  const [a, b] = pair.split(':');
  const note = 'echo "$RXRPC_VM_KERNEL ($(sed -n "s/.*Debian \\([^ ]*\\).*/\\1/p" /proc/version))" >"$RXRPC_VM_OUT/kernel"; exec "$@"';
  const args = [
    path.join(root, 'scripts', 'vm', 'pair.sh'), '--kernel-a', a, '--kernel-b', b, '--out', outDir, '--',
    'sh', '-c', note, 'sh', process.execPath, jestBin, '--config', path.join(root, 'test', 'jest.pair.config.js'),
    '--ci', '--runInBand', '--forceExit', '--json', '--outputFile', path.join(outDir, 'a', 'jest.json'),
    ...(first ? [] : ['cross-kernel']), ...(names ? ['-t', names] : []), ...extra,
    ':::', 'sh', '-c', note, 'sh', process.execPath, path.join(root, 'build', 'scripts', 'pair', 'agent.js'),
  ];
  return new Promise((resolve) => {
    const child = spawn('bash', args, { cwd: root, stdio: 'inherit' });
    child.on('close', (code) => resolve(code === null ? 1 : code));
  });
}

/**
 * Runs every pair; returns summary rows as scripts/test.js prints them. A
 * pair passes when jest in A passed and the agent in B exited 0.
 */
async function runPairs({ tmp, kernels, extra, step }) {
  const { pairs, why } = pairsToRun(kernels);
  const rows = [];
  if (why) rows.push({ where: 'pairs', passed: 0, failed: 0, skipped: 0, note: `not run: ${why}` });
  for (const [i, pair] of pairs.entries()) {
    const names = namesFor(pair);
    step(`kernels ${pair.replace(':', ' and ')}: cross-kernel${names ? ` (${names})` : ''}${i === 0 ? ' and netem' : ''} tests on two VMs`);
    const outDir = fs.mkdtempSync(path.join(tmp, `pair-${pair.replace(/[^a-z0-9]+/g, '-')}-`));
    const status = await runPair(pair, i === 0, names, outDir, extra);
    const jestJson = path.join(outDir, 'a', 'jest.json');
    const report = readReport(jestJson, names === undefined ? undefined : new RegExp(names, 'i'));
    const retries = judgeRetries(report, jestJson, `pair ${pair}`);
    const version = (role) => {
      try {
        return fs.readFileSync(path.join(outDir, role, 'kernel'), 'utf8').trim();
      } catch {
        return '?';
      }
    };
    const note = `${version('a')} and ${version('b')}${retries}`;
    if (!report) {
      rows.push({ where: `pair ${pair}`, passed: 0, failed: 1, skipped: 0, note: `no jest report (pair.sh status ${status}), see "pair:"/"vm:" lines above` });
    } else {
      if (status !== 0 && report.failed === 0) report.failed = 1; // the agent failed, or a VM
      rows.push({ where: `pair ${pair}`, ...report, note });
    }
  }
  return rows;
}

module.exports = { runPairs, PAIRS };

// node scripts/test-pairs.js [A:B ...]: only the pair tests (RXRPC_PAIRS's
// pairs, or the default ones; JEST_ARGS as for npm test), with the same
// summary and closing line as npm test. Boots VMs: run it under flock.
if (require.main === module) {
  const os = require('node:os');
  if (process.argv.length > 2) process.env.RXRPC_PAIRS = process.argv.slice(2).join(',');
  const extra = process.env.JEST_ARGS ? process.env.JEST_ARGS.split(' ').filter(Boolean) : [];
  process.env[RETRY_ENV] = '1';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrpc-pairs-'));
  const started = Date.now();
  runPairs({ tmp, kernels: (process.env.RXRPC_KERNELS || '').split(',').map((k) => k.trim()).filter(Boolean), extra, step: (t) => console.log(`\n=== ${t}`) }).then((rows) => {
    console.log(`\n=== summary (${Math.round((Date.now() - started) / 1000)} s)`);
    for (const r of rows) console.log(`${r.where.padEnd(36)} ${String(r.passed).padStart(4)} passed, ${String(r.failed).padStart(3)} failed  ${r.note}`);
    const passed = rows.reduce((n, r) => n + r.passed, 0);
    const failed = rows.reduce((n, r) => n + r.failed + r.skipped, 0);
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed === 0 && rows.length ? 0 : 1);
  });
}
