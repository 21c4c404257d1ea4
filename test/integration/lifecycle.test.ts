import { rethrow, run } from './lifecycle-run';

describe('lifecycle', () => {
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
      rethrow(x.error);
      expect(x.arrived).toBe(x.sent);
    }
  });
});
