import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freshPort } from './helpers';

const child = join(__dirname, '..', 'lifecycle-child.js');

/** Runs one scenario of test/lifecycle-child.ts in a process of its own and returns what it measured. */
function run(scenario: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--expose-gc', child, scenario, String(freshPort())], {
    encoding: 'utf8', timeout: 240000,
  });
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  let result: Record<string, unknown>;
  try {
    result = JSON.parse(line);
  } catch {
    throw new Error(`${scenario}: no result (status ${r.status}, signal ${r.signal})\n${r.stdout}\n${r.stderr}`);
  }
  if (r.status !== 0) throw new Error(`${scenario} failed: ${JSON.stringify(result)}\n${r.stderr}`);
  return result;
}

describe('lifecycle', () => {
  test('1,000 Clients opened, used once and closed: every native wrapper is collected, resident growth under 10 MB', () => {
    const r = run('collect');
    console.log(`collect: ${JSON.stringify(r)}`);
    // The server's socket and the one keeping the local endpoint are the only ones alive while the clients come and go.
    expect(r).toMatchObject({ clients: 1000, liveBefore: 2, liveAfter: 2, liveEnd: 0 });
    expect(r.rssGrowthMB).toBeLessThan(10);
  });

  test('a send asleep in the kernel is woken by abort() and close(), with the application handling SIGURG', () => {
    const r = run('signals');
    expect(r.bulkMode).toBe('bulk');
    expect(r.sigurg).toBe(0); // the wake-ups never reach the application's handler
    expect(r.wakeSignal).toBeGreaterThanOrEqual(34); // a real-time signal
    expect(r.abortError).toMatchObject({ name: 'RxAbortError' });
    expect(r.closeError).toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    // The kernel would give up on the silent peer only after many seconds.
    expect(r.abortMs).toBeLessThan(3000);
    expect(r.closeMs).toBeLessThan(3000);
  });

  test('a first send asleep for a channel to one peer holds up no call to another, and an abort ends it', () => {
    const r = run('hol');
    expect(r).toMatchObject({ otherReply: 'pong', aborted: 20 });
    expect(r.otherError).toBeUndefined();
    // The silent peer's calls would otherwise last until the kernel gives up on them.
    expect(r.otherMs).toBeLessThan(3000);
    expect(r.abortMs).toBeLessThan(3000);
  });

  test('a buffer transferred away and collected right after a write changes nothing on the wire', () => {
    const r = run('transfer') as { results: Array<{ sent: string; arrived: string; error?: string }> };
    expect(r.results).toHaveLength(3);
    for (const x of r.results) {
      expect(x.error).toBeUndefined();
      expect(x.arrived).toBe(x.sent);
    }
  });
});
