/**
 * What the two-VM tests and `npm run netem` push across the link: a test
 * service (a Server), client workloads that check every byte with SHA-256
 * digests and account for every call, the upgrade probe, and netem on the
 * link's interface. The same functions run on both guests: the test side
 * calls them directly and the other guest through scripts/pair/agent.ts.
 *
 * Request of the test service: u8 kind, u32 reply size, then the payload.
 *   kind 0 (whole): the reply is sha256(payload), sha256(body), body (reply-size bytes).
 *   kind 1 (stream): each request chunk is sent back inverted (every bit) as it arrives, then sha256(payload).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { abortCodeName } from '../../lib/constants';
import { Client } from '../../lib/client';
import { CallError } from '../../lib/endpoint';
import { RxAbortError, TimeoutError } from '../../lib/errors';
import { fixedModuleVersion } from '../../lib/kernel';
import { Server } from '../../lib/server';

export const KIND_WHOLE = 0;
export const KIND_STREAM = 1;
const HEADER = 5;
const MAX_BYTES = 64 * 1024 * 1024;

/** Every bit flipped: what the stream kind sends back, whatever the chunking. */
function invert(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ~bytes[i] & 0xff;
  return out;
}

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

// Random bytes to take payloads from (one pool per process, grown on demand).
let pool = Buffer.alloc(0);
function randomPayload(size: number): Buffer {
  if (pool.length < size + 4096) pool = randomBytes(Math.max(size + 4096, 1024 * 1024));
  const at = Math.floor(Math.random() * (pool.length - size));
  return pool.subarray(at, at + size);
}

/** A request of the test service. */
export function request(kind: number, replySize: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(HEADER);
  head.writeUInt8(kind, 0);
  head.writeUInt32BE(replySize, 1);
  return Buffer.concat([head, payload]);
}

// ---------------------------------------------------------------------------
// The test service

export interface ServeOptions {
  address: string;
  port: number;
  /** One service, or two with the upgrade from the first to the second. */
  services: [number] | [number, number];
  upgrade?: boolean;
}

export interface ServerStats {
  calls: number;
  handlerErrors: number;
  errors: string[];
}

/** Starts the test service; `stats` counts what it saw. */
export function serve(options: ServeOptions): { server: Server; stats: ServerStats } {
  const stats: ServerStats = { calls: 0, handlerErrors: 0, errors: [] };
  const [from, to] = options.services;
  const server = new Server({
    address: options.address, port: options.port, services: options.services, maxRequestBytes: MAX_BYTES,
    ...(options.upgrade && to !== undefined ? { upgrade: { from, to } } : {}),
  }, async (call) => {
    stats.calls++;
    const chunks: Buffer[] = [];
    let kind = -1;
    let size = 0;
    let got = 0;
    const hash = createHash('sha256');
    for await (const chunk of call) {
      chunks.push(chunk);
      got += chunk.length;
      if (kind < 0 && got >= HEADER) {
        const head = Buffer.concat(chunks);
        kind = head[0];
        size = head.readUInt32BE(1);
        chunks.length = 0;
        const rest = head.subarray(HEADER);
        hash.update(rest);
        if (kind === KIND_STREAM && rest.length) await call.write(invert(rest));
      } else if (kind >= 0) {
        hash.update(chunk);
        if (kind === KIND_STREAM) await call.write(invert(chunk));
      }
    }
    const digest = hash.digest();
    if (kind === KIND_STREAM) return digest;
    const body = randomPayload(Math.min(size, MAX_BYTES));
    return Buffer.concat([digest, sha(body), body]);
  });
  server.on('warning', () => {}); // the probe results say what the kernel did
  server.on('handlerError', (err) => {
    stats.handlerErrors++;
    if (stats.errors.length < 10) stats.errors.push(`handler: ${err.message}`);
  });
  server.on('error', (err) => {
    if (stats.errors.length < 10) stats.errors.push(`server: ${err.message}`);
  });
  return { server, stats };
}

// ---------------------------------------------------------------------------
// Client workloads

export interface Target {
  address: string;
  port: number;
  service: number;
}

export interface WorkloadOptions {
  target: Target;
  /** Calls in all. */
  calls: number;
  /** Calls in flight at once. */
  concurrency: number;
  /** Request payload bytes (small calls: a random size up to this). */
  requestBytes: number;
  /** Reply body bytes (small calls: a random size up to this). */
  replyBytes: number;
  /** Exact sizes rather than random ones up to them. */
  exact?: boolean;
  /** Each call's timeout (ms). */
  timeout: number;
  /** Stream the request in chunks of this size and check the reply as it streams back. */
  streamChunk?: number;
  /** Told of every call that settled, with how many have (not through the agent). */
  onSettle?: (settled: number) => void;
}

export interface Outcome {
  calls: number;
  ok: number;
  /** Calls that failed with a typed error, by code (RX_* name for aborts). */
  failed: Record<string, number>;
  /** Calls that ended wrongly: bytes not intact, an untyped error, or later than their timeout allows. */
  bad: number;
  /** Calls that had not settled long after their timeout (never settling is the bug this looks for). */
  pending: number;
  /** Some of what went wrong, for the report. */
  problems: string[];
  /** Latency of the calls that completed, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Payload bytes moved by the completed calls (both ways). */
  bytes: number;
  seconds: number;
  kernel: string;
}

/** How much later than its timeout a call may settle (a loaded, emulated machine). */
export const SETTLE_SLACK_MS = 10000;

/** The key a typed failure is counted under; undefined for an error the library should not produce. */
export function typedKey(err: unknown): string | undefined {
  if (err instanceof RxAbortError) return err.abortName ?? `abort ${err.abortCode}`;
  if (err instanceof TimeoutError) return 'timeout';
  if (err instanceof CallError) return `${err.kind} ${err.code}`;
  // A system error by its shape: under jest the addon's errors come from another realm than `Error`.
  const e = err as { code?: unknown; errno?: unknown; syscall?: unknown } | null;
  if (typeof e === 'object' && e !== null && typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    return `${e.syscall} ${e.code}`;
  }
  return undefined;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One call of the workload; throws for bytes that are not intact. */
async function oneCall(client: Client, o: WorkloadOptions): Promise<number> {
  const size = (max: number) => (o.exact ? max : Math.floor(Math.random() * (max + 1)));
  const payload = randomPayload(size(o.requestBytes));
  if (o.streamChunk) {
    const call = client.openCall(o.target, { timeout: o.timeout });
    const reader = (async () => {
      const back: Buffer[] = [];
      for await (const chunk of call) back.push(chunk);
      return Buffer.concat(back);
    })();
    reader.catch(() => {}); // its failure is the call's, seen by `result` below
    await call.write(request(KIND_STREAM, 0, Buffer.alloc(0)));
    for (let at = 0; at < payload.length; at += o.streamChunk) await call.write(payload.subarray(at, at + o.streamChunk));
    await call.end();
    await call.result;
    const back = await reader;
    const body = back.subarray(0, back.length - 32);
    if (back.length !== payload.length + 32 || !body.equals(invert(payload))) {
      throw new Error(`stream: ${back.length - 32} bytes back for ${payload.length}, not the request inverted`);
    }
    if (!back.subarray(-32).equals(sha(payload))) throw new Error('stream: the server digested other bytes than were sent');
    return 2 * payload.length;
  }
  const reply = await client.call(o.target, request(KIND_WHOLE, size(o.replyBytes), payload), { timeout: o.timeout, maxReplyBytes: MAX_BYTES });
  const data = reply.data;
  if (reply.service !== o.target.service) throw new Error(`answered by service ${reply.service}, not ${o.target.service}`);
  if (data.length < 64) throw new Error(`reply of ${data.length} bytes`);
  if (!data.subarray(0, 32).equals(sha(payload))) throw new Error('the server digested other bytes than were sent');
  const body = data.subarray(64);
  if (!data.subarray(32, 64).equals(sha(body))) throw new Error(`the reply body (${body.length} bytes) is not what the server sent`);
  return payload.length + body.length;
}

/** Runs the workload on `client`: every call is accounted for, none is left behind. */
export async function runWorkload(client: Client, o: WorkloadOptions): Promise<Outcome> {
  const out: Outcome = {
    calls: o.calls, ok: 0, failed: {}, bad: 0, pending: 0, problems: [], p50: 0, p99: 0, max: 0, bytes: 0, seconds: 0, kernel: release(),
  };
  const latencies: number[] = [];
  const problem = (text: string) => {
    out.bad++;
    if (out.problems.length < 10) out.problems.push(text);
  };
  let next = 0;
  let settledCount = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < o.calls) {
      const i = next++;
      const t0 = performance.now();
      let watchdog: NodeJS.Timeout | undefined;
      const call = oneCall(client, o);
      const settled = await Promise.race([
        call.then((bytes) => ({ bytes }), (error: unknown) => ({ error })),
        new Promise<'pending'>((resolve) => (watchdog = setTimeout(resolve, o.timeout + 3 * SETTLE_SLACK_MS, 'pending'))),
      ]);
      clearTimeout(watchdog);
      o.onSettle?.(++settledCount);
      const ms = performance.now() - t0;
      if (settled === 'pending') {
        out.pending++;
        if (out.problems.length < 10) out.problems.push(`call ${i} still pending after ${Math.round(ms)} ms`);
        continue;
      }
      if (ms > o.timeout + SETTLE_SLACK_MS) problem(`call ${i} settled after ${Math.round(ms)} ms, timeout ${o.timeout} ms`);
      if ('bytes' in settled) {
        out.ok++;
        out.bytes += settled.bytes;
        latencies.push(ms);
        continue;
      }
      const key = typedKey(settled.error);
      if (key === undefined) problem(`call ${i}: ${settled.error instanceof Error ? `${settled.error.name}: ${settled.error.message}` : String(settled.error)}`);
      else out.failed[key] = (out.failed[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.calls) }, worker));
  out.seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  out.p50 = percentile(latencies, 50);
  out.p99 = percentile(latencies, 99);
  out.max = latencies.at(-1) ?? 0;
  return out;
}

/** A client for the workloads: enough calls per peer for the concurrency asked. */
export function workloadClient(concurrency: number): Client {
  return new Client({ maxCallsPerPeer: Math.max(8, concurrency), maxReplyBytes: MAX_BYTES });
}

// ---------------------------------------------------------------------------
// The upgrade probe

export interface ProbeTally {
  probes: number;
  upgraded: number;
  /** Answered by the original service. */
  original: number;
  /** The probe was broken by RX_PROTOCOL_ERROR and fell back to the original service. */
  protocolError: number;
  /** Other outcomes, by name (rejections included). */
  other: Record<string, number>;
  /** A call made after each probe: answered by the service the probe taught, or not. */
  followUpOk: number;
  problems: string[];
  kernel: string;
}

/** `probes` probes from fresh clients (new connections), each followed by a call to what it learned. */
export async function probeUpgrade(address: string, port: number, services: [number, number], probes: number): Promise<ProbeTally> {
  const t: ProbeTally = { probes, upgraded: 0, original: 0, protocolError: 0, other: {}, followUpOk: 0, problems: [], kernel: release() };
  const [from, to] = services;
  for (let i = 0; i < probes; i++) {
    const client = new Client();
    try {
      const r = await client.probe({ address, port }, { service: from, upgradeTo: to, request: request(KIND_WHOLE, 0, Buffer.from('probe')), timeout: 15000 });
      if (r.upgraded) t.upgraded++;
      else if (r.fallback === 'protocol-error') t.protocolError++;
      else if (r.abortCode === undefined) t.original++;
      else t.other[abortCodeName(r.abortCode) ?? String(r.abortCode)] = (t.other[abortCodeName(r.abortCode) ?? String(r.abortCode)] ?? 0) + 1;
      const expected = r.service;
      const reply = await client.call({ address, port, service: from }, request(KIND_WHOLE, 16, Buffer.from('after')), { timeout: 15000 });
      if (reply.service === expected) t.followUpOk++;
      else if (t.problems.length < 10) t.problems.push(`probe ${i}: learned ${expected}, the next call was answered by ${reply.service}`);
    } catch (err) {
      const key = typedKey(err) ?? (err as Error).name;
      t.other[key] = (t.other[key] ?? 0) + 1;
      if (t.problems.length < 10) t.problems.push(`probe ${i}: ${(err as Error).message}`);
    } finally {
      client.close();
    }
  }
  return t;
}

// ---------------------------------------------------------------------------
// The guest: kernel, link, descriptors

export interface GuestInfo {
  kernel: string;
  /** Debian's package version of the kernel. */
  version: string;
  /** Which rxrpc module the VM loaded: 'stock', or 'fixed' (the patched one). */
  module: string;
  /** The fixed module's version (upgrade-fix.N), if that is the one loaded. */
  moduleVersion?: string;
}

export function guestInfo(): GuestInfo {
  const proc = readFileSync('/proc/version', 'utf8');
  // The last "Debian x.y" of /proc/version is the kernel's (the first is the compiler's).
  return {
    kernel: release(), version: /.*Debian (\S+)/.exec(proc)?.[1] ?? '', module: process.env.RXRPC_VM_MODULE ?? 'stock',
    moduleVersion: fixedModuleVersion(),
  };
}

/** Open descriptors of this process. */
export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Raises net.rxrpc.max_backlog to its limit (31): bursts beyond the accept pool fail on 6.1. */
export function raiseBacklog(): void {
  writeFileSync('/proc/sys/net/rxrpc/max_backlog', '31');
}

/**
 * netem on the egress of `dev` (both guests set theirs, so both directions
 * see the fault); no arguments removes it. The queue is made long enough
 * for a window of bulk data delayed by 150 ms.
 */
export function netem(dev: string, args: readonly string[]): void {
  if (args.length === 0) {
    try {
      execFileSync('tc', ['qdisc', 'del', 'dev', dev, 'root'], { stdio: 'pipe' });
    } catch (err) {
      // No qdisc of ours to remove is fine; anything else is not.
      if (!/No such file|Cannot delete qdisc with handle of zero/.test(String((err as { stderr?: Buffer }).stderr))) throw err;
    }
    return;
  }
  execFileSync('tc', ['qdisc', 'replace', 'dev', dev, 'root', 'netem', 'limit', '10000', ...args], { stdio: 'pipe' });
}

/** The qdisc on `dev`, as tc shows it. */
export function qdisc(dev: string): string {
  return execFileSync('tc', ['qdisc', 'show', 'dev', dev], { encoding: 'utf8' }).trim();
}

/** Cuts the link's egress for `ms`, then puts `after` back. */
export function cut(dev: string, ms: number, after: readonly string[]): Promise<void> {
  netem(dev, ['loss', '100%']);
  return new Promise((resolve, reject) => setTimeout(() => {
    try {
      netem(dev, after);
      resolve();
    } catch (err) {
      reject(err);
    }
  }, ms));
}
