import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The sanitized run's judgement of tests that passed only when run again (scripts/test-sanitize.js).
const { retried } = require(join(__dirname, '..', '..', '..', 'scripts', 'test-sanitize.js')) as {
  retried: (file: string) => { accepted: string[]; refused: string[] };
};

const report = (assertions: object[]) => {
  const file = join(mkdtempSync(join(tmpdir(), 'rxrpc-retry-')), 'jest.json');
  writeFileSync(file, JSON.stringify({ testResults: [{ assertionResults: assertions }] }));
  return file;
};

test('a second run is accepted only after RX_CALL_TIMEOUT or RX_CALL_DEAD; a first-run pass or a final failure is not a retry', () => {
  expect(retried(report([
    { fullName: 'timeout', status: 'passed', invocations: 2, retryReasons: ['RxAbortError: Call aborted with code -3 (RX_CALL_TIMEOUT)'] },
    { fullName: 'dead', status: 'passed', invocations: 2, retryReasons: ['RxAbortError: Call aborted with code -1 (RX_CALL_DEAD)'] },
    { fullName: 'other', status: 'passed', invocations: 2, retryReasons: ['Error: expect(received).toBe(expected)'] },
    { fullName: 'mixed', status: 'passed', invocations: 3, retryReasons: ['RX_CALL_TIMEOUT', 'TypeError: x'] },
    { fullName: 'once', status: 'passed', invocations: 1, retryReasons: [] },
    { fullName: 'failed twice', status: 'failed', invocations: 2, retryReasons: ['RX_CALL_TIMEOUT'] },
  ]))).toEqual({ accepted: ['timeout', 'dead'], refused: ['other', 'mixed'] });
});

test('no report: nothing retried (the runner counts the missing report as a failure)', () => {
  expect(retried(join(tmpdir(), 'rxrpc-no-such-report.json'))).toEqual({ accepted: [], refused: [] });
});
