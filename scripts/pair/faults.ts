/**
 * Faults on the link between the two guests, and one measured run of the
 * workloads under each: the small version runs in npm test
 * (test/pair/netem.test.ts), the full one in npm run netem (scripts/netem.js).
 * netem goes on the egress of both guests' NICs, so both directions see it.
 */
import { AgentLink } from './control';
import { cut, netem, Outcome, runWorkload, Target, workloadClient } from './workload';

export interface Fault {
  name: string;
  /** netem arguments for both guests' egress (none: no qdisc). */
  netem: string[];
  /** Cut the link (100% loss both ways) for this many ms, once in the middle of each phase. */
  cutMs?: number;
}

export const FAULTS: readonly Fault[] = [
  { name: 'none', netem: [] },
  { name: '5% loss', netem: ['loss', '5%'] },
  { name: '100 ms delay, 50 ms jitter, reordering', netem: ['delay', '100ms', '50ms', 'reorder', '25%', '50%'] },
  { name: '1% duplication', netem: ['duplicate', '1%'] },
  { name: 'link cut for 3 s', netem: [], cutMs: 3000 },
];

export interface FaultSizes {
  smallCalls: number;
  smallConcurrency: number;
  bulkCalls: number;
  bulkConcurrency: number;
  /** Bytes each way of a bulk call. */
  bulkBytes: number;
  smallTimeout: number;
  bulkTimeout: number;
}

export const FULL: FaultSizes = {
  smallCalls: 10000, smallConcurrency: 16, bulkCalls: 20, bulkConcurrency: 4, bulkBytes: 1024 * 1024, smallTimeout: 30000, bulkTimeout: 120000,
};

export interface FaultRow {
  fault: string;
  netem: string;
  small: Outcome;
  bulk: Outcome;
  /** When the link was cut, ms after the start of each phase. */
  cuts: number[];
}

/**
 * Runs the small and then the bulk workload from this guest against the
 * agent's server at `target`, with `fault` on the link.
 */
export async function runFault(agent: AgentLink, dev: string, fault: Fault, sizes: FaultSizes, target: Target): Promise<FaultRow> {
  await agent.call('netem', { args: fault.netem });
  netem(dev, fault.netem);
  const cuts: number[] = [];
  const pendingCuts: Promise<unknown>[] = [];
  const phase = async (calls: number, concurrency: number, options: Omit<Parameters<typeof runWorkload>[1], 'target' | 'calls' | 'concurrency'>) => {
    const client = workloadClient(concurrency);
    const started = Date.now();
    let cutDone = false;
    try {
      return await runWorkload(client, {
        target, calls, concurrency, ...options,
        onSettle: (settled) => {
          if (!fault.cutMs || cutDone || settled < calls / 2) return;
          cutDone = true;
          cuts.push(Date.now() - started);
          // The other guest first, while the link still carries the command.
          pendingCuts.push(agent.call('cut', { ms: fault.cutMs, after: fault.netem }).then(() => cut(dev, fault.cutMs!, fault.netem)));
        },
      });
    } finally {
      client.close();
    }
  };
  try {
    const small = await phase(sizes.smallCalls, sizes.smallConcurrency, { requestBytes: 512, replyBytes: 512, timeout: sizes.smallTimeout });
    await Promise.all(pendingCuts);
    const bulk = await phase(sizes.bulkCalls, sizes.bulkConcurrency, {
      requestBytes: sizes.bulkBytes, replyBytes: sizes.bulkBytes, exact: true, timeout: sizes.bulkTimeout,
    });
    await Promise.all(pendingCuts);
    return { fault: fault.name, netem: fault.netem.join(' ') || (fault.cutMs ? `loss 100% for ${fault.cutMs} ms` : '-'), small, bulk, cuts };
  } finally {
    netem(dev, []);
    await agent.call('netem', { args: [] });
  }
}
