'use strict';
// Reads a jest --json report as npm test's summary counts it; undefined when
// the run never wrote one. Suites that failed to run at all (a syntax error,
// a crash) count as failures too. With a test name filter (jest -t), jest
// reports the tests it filtered out as skipped: given the filter as
// `namePattern`, only skipped tests it selected count as skipped.
const fs = require('node:fs');

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

module.exports = { readReport };
