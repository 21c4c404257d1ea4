/**
 * The soak test itself (scripts/soak.js runs it in the kernel VM): N small
 * calls from a Client in this process to a Server in a child process, on
 * loopback, `inflight` at a time. Every `every` calls both processes are
 * sampled after a full GC: resident size, V8 heap in use, open descriptors.
 * Writes the report as JSON to --out and prints the samples.
 *
 *   node --expose-gc build/scripts/soak-run.js --calls N [--every N] [--inflight N] [--out FILE]
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { Client } from '../lib/client';
import { Server } from '../lib/server';
import { openDescriptors, raiseBacklog, typedKey } from './pair/workload';

const ADDRESS = '127.0.0.1';
const SERVICE = 4200;

export interface Sample {
  calls: number;
  seconds: number;
  /** Calls per second since the previous sample. */
  rate: number;
  client: Usage;
  server: Usage;
}

export interface Usage {
  rssMB: number;
  heapMB: number;
  fds: number;
}

export interface SoakReport {
  kernel: string;
  node: string;
  date: string;
  calls: number;
  inflight: number;
  ok: number;
  failed: Record<string, number>;
  /** Replies that were not the request echoed, and untyped errors. */
  bad: number;
  samples: Sample[];
}

function usage(): Usage {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rssMB: m.rss / 1e6, heapMB: m.heapUsed / 1e6, fds: openDescriptors() };
}

function option(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
}

/** The server process: echoes each request, answers 'sample' messages with its usage. */
function serverMain(port: number): void {
  const server = new Server({ address: ADDRESS, port, services: [SERVICE], backlog: 31 }, async (call) => call.request());
  server.on('error', (err) => process.send?.({ error: err.message }));
  server.on('handlerError', (err) => process.send?.({ error: err.message }));
  process.on('message', (m: { sample?: number }) => {
    if (m.sample !== undefined) process.send?.({ sample: m.sample, usage: usage() });
  });
  process.on('disconnect', () => void server.close({ timeout: 1000 }).then(() => process.exit(0)));
  process.send?.({ ready: true });
}

async function clientMain(argv: string[]): Promise<void> {
  const calls = option(argv, '--calls', 1000000);
  const every = option(argv, '--every', 100000);
  // 16 in flight by default, as the benchmark puts at most 16 on one server
  // port: 6.1 fails calls that arrive while the accept pool (31 at most) is empty.
  const inflight = option(argv, '--inflight', 16);
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : undefined;
  const port = 18800;
  raiseBacklog();
  const child = fork(__filename, ['--server', String(port)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const serverErrors: string[] = [];
  const waiting = new Map<number, (u: Usage) => void>();
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: { ready?: boolean; error?: string; sample?: number; usage?: Usage }) => {
      if (m.ready) resolve();
      if (m.error && serverErrors.length < 10) serverErrors.push(m.error);
      if (m.sample !== undefined && m.usage) waiting.get(m.sample)?.(m.usage);
    });
    child.once('exit', (code) => reject(new Error(`the server process exited (${code})`)));
  });
  const serverUsage = (at: number) => new Promise<Usage>((resolve) => {
    waiting.set(at, resolve);
    child.send({ sample: at });
  });

  const report: SoakReport = {
    kernel: release(), node: process.version, date: new Date().toISOString().slice(0, 10), calls, inflight, ok: 0, failed: {}, bad: 0, samples: [],
  };
  const client = new Client({ maxCallsPerPeer: inflight });
  const target = { address: ADDRESS, port, service: SERVICE };
  const started = performance.now();
  let last = { calls: 0, at: started };
  const sample = async (done: number) => {
    const now = performance.now();
    const s: Sample = {
      calls: done, seconds: (now - started) / 1000, rate: (done - last.calls) / ((now - last.at) / 1000), client: usage(), server: await serverUsage(done),
    };
    last = { calls: done, at: now };
    report.samples.push(s);
    process.stdout.write(`${JSON.stringify(s)}\n`);
  };
  await sample(0);
  let next = 0;
  let done = 0;
  const pendingSamples: Promise<void>[] = [];
  const worker = async () => {
    const body = Buffer.alloc(40);
    while (next < calls) {
      const i = next++;
      body.writeDoubleBE(i, 0);
      body.writeDoubleBE(Math.random(), 8);
      try {
        const reply = await client.call(target, body, { timeout: 30000 });
        if (reply.data.equals(body)) report.ok++;
        else report.bad++;
      } catch (err) {
        const key = typedKey(err);
        if (key === undefined) report.bad++;
        else report.failed[key] = (report.failed[key] ?? 0) + 1;
      }
      if (++done % every === 0) pendingSamples.push(sample(done));
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  await Promise.all(pendingSamples);
  client.close();
  child.disconnect();
  if (serverErrors.length) report.failed['server errors'] = serverErrors.length;
  if (out) writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`soak: ${report.ok} of ${calls} calls ok, ${report.bad} bad, failed ${JSON.stringify(report.failed)}${serverErrors.length ? `; server: ${serverErrors.join('; ')}` : ''}\n`);
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--server') {
    serverMain(Number(argv[1]));
  } else {
    clientMain(argv).catch((err) => {
      console.error(`soak: ${err.stack ?? err}`);
      process.exit(1);
    });
  }
}
