/**
 * The small version of npm run netem: calls across the link between the two
 * VMs under each fault netem puts on it. Every call must complete with its
 * bytes intact or fail with a typed error within its timeout, none may stay
 * pending, and the processes must not hang.
 */
import { AgentLink } from '../../scripts/pair/control';
import { FaultRow, FAULTS, FaultSizes, runFault } from '../../scripts/pair/faults';
import { GuestInfo, netem, Outcome, qdisc, runWorkload, workloadClient } from '../../scripts/pair/workload';
import { connectPeer, DEV, PEER, PEER_SUITE, report, SELF_SUITE } from './helpers';

const PORT = 18720;
const SERVICE = 4110;

// Bulk calls of 256 KiB each way: under the delay with jitter 1 MiB takes about 100 s (see README).
const SIZES: FaultSizes = {
  smallCalls: 200, smallConcurrency: 16, bulkCalls: 2, bulkConcurrency: 2, bulkBytes: 256 * 1024, smallTimeout: 30000, bulkTimeout: 120000,
};

/** Measured lowest completion, small and bulk, per fault (the full run's table is in README). */
const LEAST_OK: Record<string, [number, number]> = {
  'none': [1, 1],
  '5% loss': [0.9, 0.5],
  '100 ms delay, 50 ms jitter, reordering': [0.9, 0.5],
  '1% duplication': [1, 1],
  'link cut for 3 s': [0.9, 0.5],
};

let agent: AgentLink;
let peer: GuestInfo;

beforeAll(async () => {
  ({ agent, peer } = await connectPeer());
  await agent.call('serve', { port: PORT, services: [SERVICE] });
  // Warm-up: connections made, code compiled, before anything is measured.
  const client = workloadClient(16);
  await runWorkload(client, { target: { address: PEER, port: PORT, service: SERVICE }, calls: 100, concurrency: 16, requestBytes: 512, replyBytes: 512, timeout: 30000 });
  client.close();
}, 240000);

afterAll(async () => {
  if (!agent) return;
  await agent.call('close', { port: PORT }).catch(() => {});
  agent.close();
});

afterEach(() => netem(DEV, []));

/** Every call accounted for: done intact or failed typed, in time; nothing pending. */
function expectAccounted(o: Outcome): void {
  const failed = Object.values(o.failed).reduce((a, b) => a + b, 0);
  expect({ settled: o.ok + failed, bad: o.bad, pending: o.pending, problems: o.problems })
    .toEqual({ settled: o.calls, bad: 0, pending: 0, problems: [] });
}

const line = (o: Outcome, unit: 'calls' | 'MB') =>
  `${o.ok}/${o.calls} ok${Object.keys(o.failed).length ? ` (failed: ${JSON.stringify(o.failed)})` : ''}, ` +
  `p50 ${o.p50.toFixed(0)} ms, p99 ${o.p99.toFixed(0)} ms, ` +
  (unit === 'calls' ? `${(o.ok / o.seconds).toFixed(0)} calls/s` : `${(o.bytes / o.seconds / 1e6).toFixed(2)} MB/s`);

describe(`netem on the link: client on ${SELF_SUITE} (this VM), server on ${PEER_SUITE}`, () => {
  test('netem is on both ends of the link while a fault is set, and gone afterwards', async () => {
    const shown = await agent.call<string>('netem', { args: ['loss', '5%'] });
    netem(DEV, ['loss', '5%']);
    try {
      expect(shown).toMatch(/netem .*loss 5%/);
      expect(qdisc(DEV)).toMatch(/netem .*loss 5%/);
    } finally {
      await agent.call('netem', { args: [] });
      netem(DEV, []);
    }
    expect(qdisc(DEV)).not.toMatch(/netem/);
    expect(await agent.call<string>('netem', { args: [] })).not.toMatch(/netem/);
  });

  test.each(FAULTS.map((f) => [f.name, f] as const))('%s: every call completes intact or fails typed in time, none pending', async (name, fault) => {
    const row: FaultRow = await runFault(agent, DEV, fault, SIZES, { address: PEER, port: PORT, service: SERVICE });
    report(`netem: ${name} (${peer.kernel} server): small ${line(row.small, 'calls')}; bulk ${line(row.bulk, 'MB')}` +
      `${row.cuts.length ? `; cut at ${row.cuts.join(', ')} ms into each phase` : ''}`);
    expectAccounted(row.small);
    expectAccounted(row.bulk);
    if (fault.cutMs) expect(row.cuts).toHaveLength(2);
    const [small, bulk] = LEAST_OK[name];
    expect({ name, smallOk: row.small.ok / row.small.calls >= small, bulkOk: row.bulk.ok / row.bulk.calls >= bulk })
      .toEqual({ name, smallOk: true, bulkOk: true });
  });
});
