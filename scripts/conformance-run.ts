/**
 * Upgrade conformance of the running kernel: N probes of this library's
 * client against this library's server with RXRPC_UPGRADEABLE_SERVICE set,
 * each from a fresh client (a new local endpoint, so a new connection), and
 * a control run against a server without upgrade. Then the service ID per
 * connection: from one local endpoint (isolateServices off), a call to 2503
 * after a call to 52, against the server without upgrade. Used by
 * scripts/conformance.js (per kernel, in the VM) and by the integration tests.
 */
import { release } from 'node:os';
import { abortCodeName } from '../lib/constants';
import { Client } from '../lib/client';
import { RxAbortError, WrongServiceError } from '../lib/errors';
import { fixedModuleVersion, Server } from '../lib/server';

export interface Tally {
  probes: number;
  upgraded: number;
  original: number;
  aborted: Record<string, number>;
  failed: Record<string, number>;
}

/** Calls to 2503 made after a call to 52 from the same local endpoint. */
export interface ServiceTally {
  trials: number;
  /** Answered by 2503, as the server's handler saw it too. */
  right: number;
  /** Answered by another service (the reply named it), by service. */
  wrong: Record<string, number>;
  failed: Record<string, number>;
}

export interface ConformanceReport {
  kernel: string;
  /** /sys/module/rxrpc/version: only the fixed module (kernel/) has one. */
  module: string;
  date: string;
  upgradeServer: Tally;
  plainServer: Tally;
  serviceAfterService: ServiceTally;
}

const address = '127.0.0.1';
const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};
/** What a failed call is counted as: its abort name or error code. */
const failure = (err: unknown) =>
  err instanceof RxAbortError ? err.abortName ?? String(err.abortCode) : (err as { code?: string }).code ?? (err as Error).name;

async function tally(port: number, upgrade: boolean, n: number): Promise<Tally> {
  const server = new Server(
    { address, port, services: [52, 2503], ...(upgrade ? { upgrade: { from: 52, to: 2503 } } : {}) },
    (c) => Buffer.from(String(c.service)),
  );
  server.on('warning', () => {}); // the report itself is the warning here
  const t: Tally = { probes: n, upgraded: 0, original: 0, aborted: {}, failed: {} };
  try {
    for (let i = 0; i < n; i++) {
      const client = new Client();
      try {
        const r = await client.probe({ address, port }, { service: 52, upgradeTo: 2503, request: Buffer.from('probe'), timeout: 15000 });
        // Upgraded means the server's handler saw 2503 too (its reply names the service).
        if (r.upgraded && r.reply?.toString() === '2503') t.upgraded++;
        else if (r.upgraded) bump(t.failed, `upgraded, server saw ${r.reply?.toString()}`);
        else if (r.abortCode !== undefined) bump(t.aborted, abortCodeName(r.abortCode) ?? String(r.abortCode));
        else t.original++;
      } catch (err) {
        bump(err instanceof RxAbortError ? t.aborted : t.failed, failure(err));
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close({ timeout: 1000 });
  }
  return t;
}

async function serviceAfterService(port: number, n: number): Promise<ServiceTally> {
  const server = new Server({ address, port, services: [52, 2503] }, (c) => Buffer.from(String(c.service)));
  const t: ServiceTally = { trials: n, right: 0, wrong: {}, failed: {} };
  try {
    for (let i = 0; i < n; i++) {
      const client = new Client({ isolateServices: false });
      try {
        await client.call({ address, port, service: 52 }, Buffer.from('a'), { timeout: 15000 });
        const r = await client.call({ address, port, service: 2503 }, Buffer.from('b'), { timeout: 15000 });
        if (r.service === 2503 && r.data.toString() === '2503') t.right++;
        else bump(t.wrong, r.data.toString());
      } catch (err) {
        if (err instanceof WrongServiceError) bump(t.wrong, String(err.received));
        else bump(t.failed, failure(err));
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close({ timeout: 1000 });
  }
  return t;
}

export async function runConformance(n: number, basePort = 17900): Promise<ConformanceReport> {
  const upgradeServer = await tally(basePort, true, n);
  const plainServer = await tally(basePort + 1, false, Math.min(n, 20));
  const services = await serviceAfterService(basePort + 2, Math.min(n, 20));
  const module = fixedModuleVersion() ?? 'stock';
  return {
    kernel: release(), module, date: new Date().toISOString().slice(0, 10), upgradeServer, plainServer, serviceAfterService: services,
  };
}

if (require.main === module) {
  const n = Number(process.argv[2] ?? 50);
  runConformance(n).then(
    (report) => {
      process.stdout.write(`${JSON.stringify(report)}\n`);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
