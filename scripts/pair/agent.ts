/**
 * The other guest's half of the two-VM tests (scripts/vm/pair.sh runs it in
 * VM B): serves the control commands below on RXRPC_PAIR_SELF, port
 * CONTROL_PORT, and exits 0 when told to ('exit'). It exits 1 when nobody
 * connects for a long while, or when something of its own failed.
 *
 * Commands: hello, serve, close, run (a client workload), probe, netem, cut,
 * resources, exit. See scripts/pair/workload.ts for what they do.
 */
import { Socket } from 'node:net';
import { Server } from '../../lib/server';
import { CONTROL_PORT, serveCommands } from './control';
import {
  cut, guestInfo, netem, openDescriptors, probeUpgrade, qdisc, raiseBacklog, runWorkload, serve, ServeOptions,
  ServerStats, workloadClient, WorkloadOptions,
} from './workload';

const self = process.env.RXRPC_PAIR_SELF;
const dev = process.env.RXRPC_PAIR_IF ?? 'eth0';
/** How long the agent waits for a (next) connection before it gives up. */
const IDLE_MS = Number(process.env.RXRPC_PAIR_AGENT_IDLE ?? 300000);

function log(line: string): void {
  process.stdout.write(`agent: ${line}\n`);
}

async function main(): Promise<void> {
  if (!self) throw new Error('RXRPC_PAIR_SELF is not set: run the agent with scripts/vm/pair.sh');
  raiseBacklog();
  const servers = new Map<number, { server: Server; stats: ServerStats }>();
  const cuts: Promise<void>[] = [];
  let failures = 0;
  let connections = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      log(`no control connection for ${IDLE_MS / 1000} s; giving up`);
      process.exit(1);
    }, IDLE_MS);
  };

  const closeServer = async (port: number) => {
    const s = servers.get(port);
    if (!s) throw new Error(`no server on port ${port}`);
    servers.delete(port);
    await s.server.close({ timeout: 2000 });
    return s.stats;
  };

  const commands = {
    hello: () => guestInfo(),
    serve: (o: Omit<ServeOptions, 'address'>) => {
      if (servers.has(o.port)) throw new Error(`already serving on port ${o.port}`);
      servers.set(o.port, serve({ ...o, address: self }));
      return { address: self, port: o.port };
    },
    close: (o: { port: number }) => closeServer(o.port),
    stats: (o: { port: number }) => servers.get(o.port)?.stats,
    run: async (o: WorkloadOptions) => {
      const client = workloadClient(o.concurrency);
      try {
        return await runWorkload(client, o);
      } finally {
        client.close();
      }
    },
    probe: (o: { address: string; port: number; services: [number, number]; probes: number }) =>
      probeUpgrade(o.address, o.port, o.services, o.probes),
    netem: (o: { args: string[] }) => {
      netem(dev, o.args);
      return qdisc(dev);
    },
    cut: (o: { ms: number; after: string[] }) => {
      const done = cut(dev, o.ms, o.after);
      done.catch((err) => {
        failures++;
        log(`restoring the link after a cut failed: ${err.message}`);
      });
      cuts.push(done);
      return qdisc(dev);
    },
    resources: () => {
      const m = process.memoryUsage();
      return { rss: m.rss, heapUsed: m.heapUsed, fds: openDescriptors() };
    },
    exit: () => {
      setImmediate(async () => {
        await Promise.allSettled(cuts);
        for (const port of [...servers.keys()]) await closeServer(port).catch(() => {});
        netem(dev, []);
        log(failures ? `exiting after ${failures} failures of its own` : 'done');
        process.exit(failures ? 1 : 0);
      });
      return 'bye';
    },
  };

  await serveCommands(self, CONTROL_PORT, commands, (socket: Socket) => {
    connections++;
    clearTimeout(idle);
    socket.on('close', () => {
      if (--connections === 0) armIdle();
    });
  });
  log(`listening on ${self}:${CONTROL_PORT} (${guestInfo().kernel})`);
  armIdle();
}

main().catch((err) => {
  log(`failed: ${err.stack ?? err}`);
  process.exit(1);
});
