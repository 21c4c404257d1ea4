/**
 * The full fault run of npm run netem, in VM A of scripts/vm/pair.sh (the
 * agent serves in VM B): a warm-up, then each fault of FAULTS with the small
 * and bulk workloads at full size. Writes the rows as JSON to --out.
 *
 *   node build/scripts/netem-run.js --out FILE [--small N] [--bulk N] [--only name,...]
 */
import { writeFileSync } from 'node:fs';
import { AgentLink } from './pair/control';
import { FaultRow, FAULTS, FULL, runFault } from './pair/faults';
import { guestInfo, GuestInfo, raiseBacklog, runWorkload, workloadClient } from './pair/workload';

const PORT = 18730;
const SERVICE = 4120;

export interface NetemReport {
  date: string;
  client: GuestInfo;
  server: GuestInfo;
  sizes: typeof FULL;
  rows: FaultRow[];
}

async function main(argv: string[]): Promise<void> {
  const option = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const out = option('--out');
  const sizes = { ...FULL, smallCalls: Number(option('--small') ?? FULL.smallCalls), bulkCalls: Number(option('--bulk') ?? FULL.bulkCalls) };
  const only = option('--only')?.split(',');
  const self = process.env.RXRPC_PAIR_SELF;
  const peer = process.env.RXRPC_PAIR_PEER;
  const dev = process.env.RXRPC_PAIR_IF ?? 'eth0';
  if (!out || !self || !peer) throw new Error('usage: netem-run.js --out FILE, in VM A of scripts/vm/pair.sh');
  raiseBacklog();
  const agent = await AgentLink.connect(peer);
  try {
    const server = await agent.call<GuestInfo>('hello');
    await agent.call('serve', { port: PORT, services: [SERVICE] });
    const target = { address: peer, port: PORT, service: SERVICE };
    // Warm-up: connections made, code compiled, pools filled.
    const warm = workloadClient(16);
    await runWorkload(warm, { target, calls: 300, concurrency: 16, requestBytes: 512, replyBytes: 512, timeout: 30000 });
    warm.close();
    const report: NetemReport = { date: new Date().toISOString(), client: guestInfo(), server, sizes, rows: [] };
    for (const fault of FAULTS.filter((f) => !only || only.includes(f.name))) {
      process.stdout.write(`netem: ${fault.name}...\n`);
      const row = await runFault(agent, dev, fault, sizes, target);
      process.stdout.write(`netem: ${fault.name}: small ${row.small.ok}/${row.small.calls} ${JSON.stringify(row.small.failed)} ` +
        `bad ${row.small.bad} pending ${row.small.pending}; bulk ${row.bulk.ok}/${row.bulk.calls} ${JSON.stringify(row.bulk.failed)} ` +
        `bad ${row.bulk.bad} pending ${row.bulk.pending}\n`);
      report.rows.push(row);
      writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    }
    await agent.call('close', { port: PORT });
    await agent.call('exit');
  } finally {
    agent.close();
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`netem: ${err.stack ?? err}`);
  process.exit(1);
});
