'use strict';
// Reads a jest --json report as npm test's summary counts it; undefined when
// the run never wrote one. Suites that failed to run at all (a syntax error,
// a crash) count as failures too. With a test name filter (jest -t), jest
// reports the tests it filtered out as skipped: given the filter as
// `namePattern`, only skipped tests it selected count as skipped.
//
// In a kernel VM a failed test is run once more (test/integration/retry-setup.ts,
// RXRPC_RETRY_KERNEL_TIMEOUTS). A pass on the second run counts only if every
// earlier run failed with the kernel's own call expiry: the call ended with
// RX_CALL_TIMEOUT, or RX_CALL_DEAD (the same expiry on a connection that heard
// newer packets). The kernel's 1 s request timer and its silent-peer limits
// trip when an emulated guest stalls; any other first failure counts as failed.
// Every test run twice is named, with its first failure.
const fs = require('node:fs');

const RETRY_ENV = 'RXRPC_RETRY_KERNEL_TIMEOUTS';
// The error itself, as lib/errors.ts words it: not an assertion whose diff quotes the name.
const KERNEL_EXPIRY = /^RxAbortError: Call aborted with code -?\d+ \((?:RX_CALL_TIMEOUT|RX_CALL_DEAD)\)/;

function readReport(file, namePattern) {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    const broken = r.testResults.filter((t) => t.status === 'failed' && t.assertionResults.length === 0).length;
    const skipped = namePattern === undefined
      ? r.numPendingTests + r.numTodoTests
      : r.testResults.flatMap((t) => t.assertionResults)
        .filter((a) => (a.status === 'pending' || a.status === 'todo') && namePattern.test(a.fullName)).length;
    return { passed: r.numPassedTests, failed: r.numFailedTests + broken, skipped };
  } catch {
    return undefined;
  }
}

/** A failure as one line: its message up to the stack (an assertion's diff included), at most 8 lines, joined. */
function firstLines(reason) {
  if (reason === undefined) return 'no reason recorded';
  // eslint-disable-next-line no-control-regex
  const lines = String(reason).replace(/\u001b\[[0-9;]*m/g, '').split('\n');
  const end = lines.findIndex((l) => /^\s+at /.test(l));
  return lines.slice(0, end < 0 ? lines.length : end).map((l) => l.trim()).filter(Boolean).slice(0, 8).join(' | ');
}

/**
 * Tests of the report that passed on a second run: `accepted` after the
 * kernel's call expiry, `refused` after anything else; each { name, first }
 * with its first failure (firstLines).
 */
function retried(file) {
  const out = { accepted: [], refused: [] };
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const a of r.testResults.flatMap((t) => t.assertionResults)) {
      if (a.status !== 'passed' || !(a.invocations > 1)) continue;
      const reasons = a.retryReasons || [];
      const entry = { name: a.fullName, first: firstLines(reasons[0]) };
      (reasons.length > 0 && reasons.every((m) => KERNEL_EXPIRY.test(m)) ? out.accepted : out.refused).push(entry);
    }
  } catch {
    // no report: readReport says so
  }
  return out;
}

/**
 * Applies retried() to a report's counts: a refused retry moves from passed to
 * failed. Prints each retried test under `where`; returns the note's fragment.
 */
function judgeRetries(report, file, where) {
  const again = retried(file);
  for (const t of again.accepted) console.log(`${where}: passed when run again after the kernel's call expiry (${t.first}): ${t.name}`);
  for (const t of again.refused) console.log(`${where}: failed (${t.first}), then passed when run again; counted as failed: ${t.name}`);
  if (report) {
    report.passed -= again.refused.length;
    report.failed += again.refused.length;
  }
  return (again.accepted.length ? `, ${again.accepted.length} passed when run again after RX_CALL_TIMEOUT or RX_CALL_DEAD` : '') +
    (again.refused.length ? `, ${again.refused.length} failed before passing when run again` : '');
}

module.exports = { readReport, retried, judgeRetries, RETRY_ENV };
