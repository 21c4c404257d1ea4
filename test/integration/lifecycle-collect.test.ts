import { run } from './lifecycle-run';

// 1,000 Clients, one after another: about 110 s on 6.12 and 170 s on 7.3
// in the emulated guest, so npm test runs it on one kernel of the matrix
// (RXRPC_COLLECT_TEST, scripts/test.js); the sanitized run leaves it out
// (resident growth is ASan's allocator's there).
describe('lifecycle', () => {
  test('1,000 Clients opened, used once and closed: every native wrapper is collected, resident growth under 10 MB', () => {
    const r = run('collect');
    console.log(`collect: ${JSON.stringify(r)}`);
    // The server's socket and the one keeping the local endpoint are the only ones alive while the clients come and go.
    expect(r).toMatchObject({ clients: 1000, liveBefore: 2, liveAfter: 2, liveEnd: 0 });
    expect(r.rssGrowthMB).toBeLessThan(10);
  });
});
