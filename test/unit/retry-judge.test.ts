import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// How the VM runs judge tests that passed only when run again (scripts/jest-report.js).
type Entry = { name: string; first: string };
type Report = { passed: number; failed: number; skipped: number };
const { retried, judgeRetries } = require(join(__dirname, '..', '..', '..', 'scripts', 'jest-report.js')) as {
  retried: (file: string) => { accepted: Entry[]; refused: Entry[] };
  judgeRetries: (report: Report | undefined, file: string, where: string) => string;
};

const report = (assertions: object[]) => {
  const file = join(mkdtempSync(join(tmpdir(), 'rxrpc-retry-')), 'jest.json');
  writeFileSync(file, JSON.stringify({ testResults: [{ assertionResults: assertions }] }));
  return file;
};
const at = '\n    at Object.<anonymous> (x.test.js:1:1)';
const timeout = `RxAbortError: Call aborted with code -3 (RX_CALL_TIMEOUT)${at}`;
const names = (l: Entry[]) => l.map((e) => e.name);

test('a second run is accepted only after RX_CALL_TIMEOUT or RX_CALL_DEAD; a first-run pass or a final failure is not a retry', () => {
  const r = retried(report([
    { fullName: 'timeout', status: 'passed', invocations: 2, retryReasons: [timeout] },
    { fullName: 'dead', status: 'passed', invocations: 2, retryReasons: [`RxAbortError: Call aborted with code -1 (RX_CALL_DEAD)${at}`] },
    { fullName: 'other', status: 'passed', invocations: 2, retryReasons: [`Error: expect(received).toBe(expected)\n\nExpected: 1\nReceived: 2${at}`] },
    { fullName: 'mixed', status: 'passed', invocations: 3, retryReasons: [timeout, `TypeError: x${at}`] },
    { fullName: 'once', status: 'passed', invocations: 1, retryReasons: [] },
    { fullName: 'failed twice', status: 'failed', invocations: 2, retryReasons: [timeout] },
    { fullName: 'no reason', status: 'passed', invocations: 2 },
  ]));
  expect(names(r.accepted)).toEqual(['timeout', 'dead']);
  expect(names(r.refused)).toEqual(['other', 'mixed', 'no reason']);
  expect(r.accepted[0].first).toBe('RxAbortError: Call aborted with code -3 (RX_CALL_TIMEOUT)');
  expect(r.refused[0].first).toBe('Error: expect(received).toBe(expected) | Expected: 1 | Received: 2');
});

test("an assertion whose diff quotes RX_CALL_TIMEOUT, or another error naming it, is not the kernel's expiry", () => {
  const r = retried(report([
    { fullName: 'diff', status: 'passed', invocations: 2, retryReasons: [`Error: expect(received).toEqual(expected)\n\n+   "abortName": "RX_CALL_TIMEOUT",${at}`] },
    { fullName: 'wrapped', status: 'passed', invocations: 2, retryReasons: [`Error: waited for RxAbortError: Call aborted with code -3 (RX_CALL_TIMEOUT)${at}`] },
    { fullName: 'other abort', status: 'passed', invocations: 2, retryReasons: [`RxAbortError: Call aborted with code -455 (RXGEN_OPCODE)${at}`] },
  ]));
  expect(r.accepted).toEqual([]);
  expect(names(r.refused)).toEqual(['diff', 'wrapped', 'other abort']);
});

test('judgeRetries moves a refused retry from passed to failed, names both kinds, and leaves accepted ones passed', () => {
  const file = report([
    { fullName: 'a', status: 'passed', invocations: 2, retryReasons: [timeout] },
    { fullName: 'b', status: 'passed', invocations: 2, retryReasons: [`Error: boom${at}`] },
  ]);
  const counts = { passed: 10, failed: 0, skipped: 0 };
  const log = jest.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const note = judgeRetries(counts, file, 'k');
    expect(counts).toEqual({ passed: 9, failed: 1, skipped: 0 });
    expect(note).toBe(', 1 passed when run again after RX_CALL_TIMEOUT or RX_CALL_DEAD, 1 failed before passing when run again');
    const lines = log.mock.calls.map((c) => String(c[0]));
    expect(lines).toEqual([
      "k: passed when run again after the kernel's call expiry (RxAbortError: Call aborted with code -3 (RX_CALL_TIMEOUT)): a",
      'k: failed (Error: boom), then passed when run again; counted as failed: b',
    ]);
  } finally {
    log.mockRestore();
  }
});

test('no report: nothing retried (the runner counts the missing report as a failure)', () => {
  expect(retried(join(tmpdir(), 'rxrpc-no-such-report.json'))).toEqual({ accepted: [], refused: [] });
  expect(judgeRetries(undefined, join(tmpdir(), 'rxrpc-no-such-report.json'), 'k')).toBe('');
});
