/**
 * Upgrade conformance of the running kernel: N probes of this library's
 * client against this library's server with RXRPC_UPGRADEABLE_SERVICE set,
 * each from a fresh client (a new local endpoint, so a new connection), and
 * a control run against a server without upgrade. Used by
 * scripts/conformance.js (per kernel, in the VM) and by the integration tests.
 */
import { release } from 'node:os';
import { abortCodeName } from '../lib/constants';
import { Client } from '../lib/client';
import { RxAbortError } from '../lib/errors';
import { Server } from '../lib/server';

export interface Tally {
  probes: number;
  upgraded: number;
  original: number;
  aborted: Record<string, number>;
  failed: Record<string, number>;
}

export interface ConformanceReport {
  kernel: string;
  date: string;
  upgradeServer: Tally;
  plainServer: Tally;
}

const address = '127.0.0.1';

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
        if (r.upgraded) t.upgraded++;
        else if (r.abortCode !== undefined) {
          const name = abortCodeName(r.abortCode) ?? String(r.abortCode);
          t.aborted[name] = (t.aborted[name] ?? 0) + 1;
        } else t.original++;
      } catch (err) {
        const key = err instanceof RxAbortError ? err.abortName ?? String(err.abortCode) : (err as { code?: string }).code ?? (err as Error).name;
        if (err instanceof RxAbortError) t.aborted[key] = (t.aborted[key] ?? 0) + 1;
        else t.failed[key] = (t.failed[key] ?? 0) + 1;
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
  return { kernel: release(), date: new Date().toISOString().slice(0, 10), upgradeServer, plainServer };
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
