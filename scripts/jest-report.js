'use strict';
// Reads a jest --json report as npm test's summary counts it; undefined when
// the run never wrote one. Suites that failed to run at all (a syntax error,
// a crash) count as failures too.
const fs = require('node:fs');

function readReport(file) {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    const broken = r.testResults.filter((t) => t.status === 'failed' && t.assertionResults.length === 0).length;
    return { passed: r.numPassedTests, failed: r.numFailedTests + broken, skipped: r.numPendingTests + r.numTodoTests };
  } catch {
    return undefined;
  }
}

module.exports = { readReport };
