import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { Call, Endpoint } from '../../lib/endpoint';
import { RX_CALL_TIMEOUT as RX_CALL_TIMEOUT_CODE } from '../../lib/constants';
import { fixedModuleVersion, kernelSeries } from '../../lib/kernel';

const MAX_BACKLOG = '/proc/sys/net/rxrpc/max_backlog';

/** The project's root (the tests run from build/test/integration). */
export const root = join(__dirname, '..', '..', '..');

/**
 * A C program of the project (path from the root) as the host's build made it
 * (built, from the root), or compiled into /tmp here when that one is missing
 * or older than its source.
 */
export function cProgram(source: string, built: string, flags: string[] = []): string {
  const src = join(root, source);
  const bin = join(root, built);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  const binary = join('/tmp', src.replace(/^.*\/|\.c$/g, ''));
  execFileSync('gcc', ['-O2', ...flags, '-o', binary, src], { stdio: 'inherit' });
  return binary;
}

/**
 * Raises net.rxrpc.max_backlog (default 10) to the kernel's limit of 31 and
 * returns it. A burst of calls larger than the server's accept pool is not
 * queued by the kernel: such calls fail (measured on 6.1: RX_PROTOCOL_ERROR).
 */
export function raiseMaxBacklog(): number {
  writeFileSync(MAX_BACKLOG, '31');
  return Number(readFileSync(MAX_BACKLOG, 'utf8'));
}

// 17200-17599; 17600-17699 belongs to the userspace peer's tests, 17900+ to conformance.
let nextPort = 17200 + (process.pid % 20) * 20;

/** A UDP port for one test's server, clear of AFS's 7000-7009. */
export function freshPort(): number {
  return nextPort++;
}

/** Collects a call's data until its phase ends. */
export function collect(call: Call): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    call.ondata = (chunk, end) => {
      chunks.push(chunk);
      if (end) resolve(Buffer.concat(chunks));
    };
    call.ondone = (err) => (err ? reject(err) : resolve(Buffer.concat(chunks)));
  });
}

/** A client call's reply and outcome. */
export function request(client: Endpoint, target: { service: number; address: string; port: number }, body: Uint8Array,
  options: Parameters<Endpoint['startCall']>[3] = {}): { call: Call; reply: Promise<{ data: Buffer; service: number }> } {
  const call = client.startCall(target, body, false, options);
  const reply = new Promise<{ data: Buffer; service: number }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    call.ondata = (chunk) => chunks.push(chunk);
    call.ondone = (err) => (err ? reject(err) : resolve({ data: Buffer.concat(chunks), service: call.service }));
  });
  return { call, reply };
}

/** A server endpoint whose handler answers each complete request. */
export function serve(address: string, port: number, services: number[],
  handler: (request: Buffer, call: Call) => Uint8Array | Promise<Uint8Array>, backlog = 8): Endpoint {
  const server = new Endpoint({ family: address.includes(':') ? 'IPv6' : 'IPv4' });
  for (const service of services) server.raw.bind({ service, address, port });
  server.listen(backlog);
  server.on('call', (call) => {
    const chunks: Buffer[] = [];
    call.ondata = (chunk, end) => {
      chunks.push(chunk);
      if (!end) return;
      Promise.resolve(handler(Buffer.concat(chunks), call)).then(
        (reply) => call.write(reply, false),
        () => call.abort(),
      );
    };
  });
  return server;
}

/** N of the fixed module's "upgrade-fix.N", 0 for Debian's stock module. */
function fixNumber(moduleVersion: string | undefined): number {
  return Number(/\d+$/.exec(moduleVersion ?? '')?.[0] ?? 0);
}

/**
 * True where the server's kernel aborts a request whose next packet is more
 * than 250 ms late (RX_CALL_TIMEOUT): Linux 6.12 and 7.x set next_req_timo in
 * jiffies and read it as milliseconds (README, Kernel support); 6.1 waits 1 s,
 * and the fixed module from upgrade-fix.2 on keeps milliseconds.
 */
export function shortRequestTimeout(kernelRelease = release(), moduleVersion = fixedModuleVersion()): boolean {
  const fixed = fixNumber(moduleVersion);
  return (kernelSeries(kernelRelease) ?? 0) >= 6012 && fixed < 2;
}

/**
 * True where every incoming call restarts the server's path-MTU discovery
 * for its peer (kernel/README.md, defect 10): Linux 7.x calls
 * rxrpc_assess_MTU_size() for each new service call, which sets the peer's
 * search back to its start, so the next calls probe the whole range again
 * with padded PINGs. 6.1 and 6.12 do no path-MTU probing; the fixed 7.3
 * module (upgrade-fix.6 on) assesses only a new peer.
 */
export function restartsPathMtuDiscovery(kernelRelease = release(), moduleVersion = fixedModuleVersion()): boolean {
  const fixed = fixNumber(moduleVersion);
  return (kernelSeries(kernelRelease) ?? 0) >= 7000 && fixed < 6;
}

/** PING ACKs this network namespace's rxrpc has sent ("Ack-Tx ... png=N" in /proc/net/rxrpc/stats, Linux 6.2 on). */
export function pingsSent(): number {
  const stats = readFileSync('/proc/net/rxrpc/stats', 'utf8');
  const m = /^Ack-Tx\s*:.*\bpng=(\d+)/m.exec(stats);
  if (!m) throw new Error(`no "Ack-Tx ... png=" line in /proc/net/rxrpc/stats:\n${stats}`);
  return Number(m[1]);
}

/**
 * Runs a bulk call `run` (a fresh call each time). Where the kernel has the
 * 250 ms request timeout (shortRequestTimeout()), the server's kernel aborts
 * a request whose next DATA packet is more than 250 ms late, which a loaded
 * emulated guest does now and then (kernel/README.md, defect 3): such an
 * RX_CALL_TIMEOUT abort is said in a line and the call made again, 3 times
 * in all. Any other failure, and every failure elsewhere, is the test's.
 */
export async function bulkCall<T>(what: string, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const abortCode = (err as { abortCode?: unknown }).abortCode;
      if (attempt >= 3 || !shortRequestTimeout() || abortCode !== RX_CALL_TIMEOUT_CODE) throw err;
      console.log(`${what}: attempt ${attempt} aborted with RX_CALL_TIMEOUT, the stock kernel's 250 ms request timeout; trying again`);
    }
  }
}

/**
 * Polls every 10 ms until `predicate` holds. `ms` bounds only how long a
 * failure takes to show: a condition that holds ends the wait at once, so the
 * bound is generous for an emulated guest that now and then stalls for seconds.
 */
export async function until(predicate: () => boolean, ms = 15000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
