/**
 * Service upgrade over rxkad on the running kernel: N upgrade probes
 * (52 -> 2503, each from a fresh Client, so a new connection) with an rxkad
 * token at level 'auth', against this library's Server with
 * RXRPC_UPGRADEABLE_SERVICE and its rxkad key installed under both service
 * IDs, under the original (52) only, and under the upgraded one (2503) only.
 * After an upgraded probe, one more call to 52 from the same Client must be
 * answered by 2503. Prints one JSON line. Run it in the kernel VM:
 *
 *   flock /tmp/rxrpc-vm.lock scripts/vm/run.sh --kernel bookworm -- node build/scripts/rxkad-upgrade.js 10
 */
import { release } from 'node:os';
import { Client } from '../lib/client';
import { RxAbortError } from '../lib/errors';
import { Server } from '../lib/server';
import { mintRxkadToken, randomDesKey } from '../lib/security/ticket';

const address = '127.0.0.1';

export interface RxkadUpgradeTally {
  /** Probes by outcome: 'upgraded', 'original', 'fallback N', 'aborted NAME', or an error's code. */
  outcomes: Record<string, number>;
  /** Upgraded probes whose next call to 52 was answered by 2503 (with its reply saying so). */
  followUpOk: number;
  /** The longest a probe took, s. */
  slowest: number;
}

/** N probes against a Server whose rxkad key is installed under the services `keysFor`. */
export async function rxkadUpgradeTally(port: number, keysFor: number[], n: number): Promise<RxkadUpgradeTally> {
  const secret = randomDesKey();
  const server = new Server({
    address, port, services: [52, 2503], upgrade: { from: 52, to: 2503 },
    security: { keys: keysFor.map((service) => ({ secret, service })) },
  }, (c) => Buffer.from(String(c.service)));
  server.on('warning', () => {});
  const t: RxkadUpgradeTally = { outcomes: {}, followUpOk: 0, slowest: 0 };
  const count = (key: string) => (t.outcomes[key] = (t.outcomes[key] ?? 0) + 1);
  try {
    for (let i = 0; i < n; i++) {
      const client = new Client({ security: { token: mintRxkadToken({ serverKey: secret, kvno: 1, name: 'probe' }), level: 'auth' } });
      const started = Date.now();
      try {
        const r = await client.probe({ address, port }, { service: 52, upgradeTo: 2503, request: Buffer.from('probe'), timeout: 25000 });
        count(r.upgraded ? 'upgraded' : r.fallback ? `fallback ${r.abortCode}` : 'original');
        t.slowest = Math.max(t.slowest, (Date.now() - started) / 1000);
        if (r.upgraded) {
          const next = await client.call({ address, port, service: 52 }, Buffer.from('next'), { timeout: 25000 });
          if (next.service === 2503 && next.data.toString() === '2503') t.followUpOk++;
        }
      } catch (err) {
        t.slowest = Math.max(t.slowest, (Date.now() - started) / 1000);
        count(err instanceof RxAbortError ? `aborted ${err.abortName ?? err.abortCode}` : (err as { code?: string }).code ?? (err as Error).name);
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close({ timeout: 1000 });
  }
  return t;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? '10');
  const report = {
    kernel: release(),
    date: new Date().toISOString(),
    probes: n,
    keysUnderBoth: await rxkadUpgradeTally(17961, [52, 2503], n),
    keysUnderOriginal: await rxkadUpgradeTally(17962, [52], n),
    keysUnderUpgraded: await rxkadUpgradeTally(17963, [2503], n),
  };
  console.log(JSON.stringify(report));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
