/**
 * Starting OpenAFS's vlserver (Debian's openafs-dbserver) for the interop
 * tests, once its configuration directory is set up: wait for ubik to elect
 * itself, then for the first transactions to stop failing with UNOQUORUM.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { Client } from '../../lib/client';
import { getStatsRequest } from '../vl';

const UNOQUORUM = 5376;

export interface VlServer {
  process: ChildProcess;
  /** Seconds from the start to a server that answers. */
  quorumSeconds: number;
}

/** Starts /usr/lib/openafs/vlserver on `address` with `args` (config, database, log...); rejects after 90 s. */
export async function startVlserver(address: string, args: string[]): Promise<VlServer> {
  const started = Date.now();
  const vlserver = spawn('/usr/lib/openafs/vlserver', args, { stdio: 'ignore' });
  // Wait for ubik to elect itself (a few seconds under emulation).
  for (;;) {
    let debug = '';
    try {
      debug = execFileSync('udebug', [address, '7003'], { encoding: 'utf8' });
    } catch {
      // not answering yet
    }
    if (debug.includes('I am sync site')) break;
    if (vlserver.exitCode !== null || Date.now() - started > 90000) {
      vlserver.kill();
      throw new Error(`vlserver did not reach quorum: exit ${vlserver.exitCode}\n${debug}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  // The first transactions after the election can still be refused with
  // ubik's UNOQUORUM (5376) while the new database is set up: wait them out.
  const client = new Client();
  try {
    for (;;) {
      try {
        await client.call({ address, port: 7003, service: 52 }, getStatsRequest(), { timeout: 20000 });
        break;
      } catch (err) {
        if ((err as { abortCode?: number }).abortCode !== UNOQUORUM || Date.now() - started > 90000) {
          vlserver.kill();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    client.close();
  }
  return { process: vlserver, quorumSeconds: (Date.now() - started) / 1000 };
}
