/**
 * The Node side of the benchmark's client workloads, in two forms: 'binding'
 * drives an Endpoint (the native socket, call ids and send queues) directly;
 * 'api' uses Client. Run as a forked worker, it takes jobs over IPC and
 * answers each with its figures.
 */
import { performance } from 'node:perf_hooks';
import { Client } from '../../lib/client';
import { Endpoint } from '../../lib/endpoint';
import { RxAbortError } from '../../lib/errors';
import { ADDRESS, errorKey, Figures, Impl, Job, LEVELS, percentile, request } from './common';

type Done = (err: Error | undefined, bytes: number, service: number) => void;

/** One call through either implementation. */
interface Caller {
  /**
   * Starts call number `slot` of those in flight (its local endpoint and
   * server port follow from it; see Workload); `done` gets the error, the
   * bytes of the reply and the service that answered.
   */
  call(body: Buffer, done: Done, upgrade?: boolean, slot?: number, probedService?: boolean): void;
  close(): void;
}

/** How a workload spreads its calls: local endpoints (0: one unbound socket), server ports. */
interface Spread {
  endpoints: number;
  ports: number;
  /** Upgrade probes each from a new local endpoint (a fresh client). */
  fresh: boolean;
}

function spreadOf(job: Job): Spread {
  const w = job.workload;
  return {
    endpoints: w.kind === 'small' ? w.endpoints ?? 0 : 0,
    ports: w.kind === 'small' ? w.ports ?? 1 : 1,
    fresh: w.kind === 'upgrade' && w.fresh === true,
  };
}

/** The server port of call number `slot`. */
const portOf = (job: Job, spread: Spread, slot: number) => job.port + (Math.floor(slot / Math.max(spread.endpoints, 1)) % spread.ports);

/** An Endpoint with the job's rxkad key and level, if any (both are set before bind). */
function newEndpoint(job: Job): Endpoint {
  const endpoint = new Endpoint();
  endpoint.on('error', () => {});
  if (job.security) {
    endpoint.raw.setSecurityKey(job.security.key);
    endpoint.raw.setMinSecurityLevel(LEVELS[job.security.level]);
  }
  return endpoint;
}

/** An Endpoint of its own, bound to a private UDP port (as Client binds its lanes). */
function privateEndpoint(job: Job): Endpoint {
  const endpoint = newEndpoint(job);
  for (let attempt = 0; ; attempt++) {
    try {
      endpoint.raw.bind({ service: 0, address: '0.0.0.0', port: 49152 + Math.floor(Math.random() * 16384) });
      return endpoint;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || attempt > 50) throw err;
    }
  }
}

function bindingCaller(job: Job, spread: Spread): Caller {
  const endpoints = spread.endpoints === 0 ? [newEndpoint(job)] : Array.from({ length: spread.endpoints }, () => privateEndpoint(job));
  const start = (endpoint: Endpoint, port: number, body: Buffer, done: Done, upgrade: boolean, probedService = false) => {
    const service = upgrade || probedService ? job.service : job.service + 1;
    let bytes = 0;
    let c;
    try {
      c = endpoint.startCall({ service, address: ADDRESS, port }, body, false, upgrade ? { upgrade, exclusive: upgrade } : undefined);
    } catch (err) {
      done(err as Error, 0, 0);
      return;
    }
    const call = c;
    call.ondata = (chunk) => (bytes += chunk.length);
    call.ondone = (err) => done(err, bytes, call.service);
  };
  return {
    call(body, done, upgrade = false, slot = 0, probedService = false) {
      if (upgrade && spread.fresh) {
        const fresh = privateEndpoint(job);
        start(fresh, job.port, body, (err, bytes, service) => {
          fresh.close();
          done(err, bytes, service);
        }, true);
        return;
      }
      start(endpoints[slot % endpoints.length], portOf(job, spread, slot), body, done, upgrade, probedService);
    },
    close: () => endpoints.forEach((e) => e.close()),
  };
}

function apiCaller(job: Job, spread: Spread, inflight: number): Caller {
  // As many calls at once per (client, server port) as the workload keeps there: none wait in the Client.
  const perPeer = Math.max(1, Math.ceil(inflight / (Math.max(spread.endpoints, 1) * spread.ports)));
  // No reply limit: the bulk workloads download 16 MiB (the default limit is 4 MiB).
  const clients = Array.from({ length: Math.max(spread.endpoints, 1) }, () => new Client({ maxCallsPerPeer: perPeer, maxReplyBytes: Infinity, security: job.security }));
  for (const c of clients) c.on('error', () => {});
  const probe = (client: Client, body: Buffer, done: Done) => {
    client.probe({ address: ADDRESS, port: job.port }, { service: job.service, upgradeTo: job.service + 1, request: body, timeout: 30000 }).then(
      // A probe the server aborted resolves with a fallback; count it as aborted, as the other clients do.
      (r) => (r.abortCode !== undefined ? done(new RxAbortError(r.abortCode), 0, 0) : done(undefined, r.reply?.length ?? 0, r.service)),
      (err: Error) => done(err, 0, 0),
    );
  };
  return {
    call(body, done, upgrade = false, slot = 0, probedService = false) {
      if (upgrade) {
        if (!spread.fresh) return probe(clients[0], body, done);
        const fresh = new Client();
        fresh.on('error', () => {});
        return probe(fresh, body, (err, bytes, service) => {
          fresh.close();
          done(err, bytes, service);
        });
      }
      const service = probedService ? job.service : job.service + 1;
      clients[slot % clients.length].call({ address: ADDRESS, port: portOf(job, spread, slot), service }, body).then(
        (r) => done(undefined, r.data.length, r.service),
        (err: Error) => done(err, 0, 0),
      );
    },
    close: () => clients.forEach((c) => c.close()),
  };
}

function makeCaller(impl: Impl, job: Job, inflight: number): Caller {
  const spread = spreadOf(job);
  return impl === 'binding' ? bindingCaller(job, spread) : apiCaller(job, spread, inflight);
}

/** Resident size and live heap in MB, after a full GC when the worker runs with --expose-gc. */
function memoryMb(): { rss: number; heap: number; committed: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss / 1e6, heap: m.heapUsed / 1e6, committed: m.heapTotal / 1e6 };
}

/** Runs one client job; resolves with its figures. */
export function runJob(impl: 'binding' | 'api', job: Job): Promise<Figures> {
  const w = job.workload;
  const inner = makeCaller(impl, job, w.kind === 'small' || w.kind === 'memory' ? w.inflight : 1);
  const cpu = process.cpuUsage();
  let completed = 0; // calls ended, warm-up included
  const caller: Caller = {
    call: (body, done, upgrade, slot, probedService) => inner.call(body, (err, bytes, service) => {
      completed++;
      done(err, bytes, service);
    }, upgrade, slot, probedService),
    close: () => inner.close(),
  };
  let failures: Record<string, number> = {};
  let errors = 0;
  const failed = (err: Error) => {
    errors++;
    const key = errorKey(err);
    failures[key] = (failures[key] ?? 0) + 1;
  };
  const finish = (f: Omit<Figures, 'errors'>): Figures => {
    caller.close();
    const used = process.cpuUsage(cpu);
    // CPU time of the whole process (every thread, user and system), as rxbench reports it.
    return { ...f, errors, ...(errors ? { failures } : {}), cpu_s: (used.user + used.system) / 1e6, total_calls: completed };
  };
  /** Calls one at a time, `count` of them; resolves with their latencies in ms. */
  const serial = (body: Buffer, count: number, upgrade = false,
    check: (err: Error | undefined, service: number) => void = (err) => err && failed(err), probedService = false) =>
    new Promise<number[]>((resolve) => {
      const latencies: number[] = [];
      const next = () => {
        if (latencies.length >= count) return resolve(latencies);
        const t0 = performance.now();
        caller.call(body, (err, _bytes, service) => {
          latencies.push(performance.now() - t0);
          check(err, service);
          next();
        }, upgrade, 0, probedService);
      };
      next();
    });
  // Three plain calls first. Before probes they go to the probed service:
  // the endpoint the probes leave from (the Client's lane for that service)
  // has then talked to the server, as the C client's socket has.
  const warmUp = () => serial(request(4, 4), 3, false, undefined, w.kind === 'upgrade').then(() => {
    errors = 0;
    failures = {};
  });

  switch (w.kind) {
    case 'small':
      return new Promise((resolve) => {
        const body = request(4, 4);
        // The window opens `warmup` seconds after the first call ended.
        let begin = Infinity;
        let end = Infinity;
        let stop = Infinity; // no call starts after it: `end`, or with `heap` a warm-up period after the GC
        const latencies: number[] = [];
        let active = 0;
        let inflightMemory: { rss: number; heap: number } | undefined;
        const start = (slot: number) => {
          active++;
          const t0 = performance.now();
          caller.call(body, (err) => {
            active--;
            const t = performance.now();
            if (begin === Infinity) {
              begin = t + w.warmup * 1000;
              end = begin + w.seconds * 1000;
              stop = end;
            }
            if (err) failed(err);
            else if (t >= begin && t < end) latencies.push(t - t0);
            if (t >= end && w.heap && !inflightMemory) {
              // This slot's next call first: the GC runs with every slot's call in flight (with none, it
              // frees the per-call objects' maps and V8 deoptimizes the code that embedded them). The
              // calls then go on for another warm-up period, in which V8 compiles what it dropped anyway.
              start(slot);
              inflightMemory = memoryMb();
              stop = performance.now() + w.warmup * 1000;
              return;
            }
            if (t < stop) start(slot);
            else if (active === 0) {
              const calls = latencies.length;
              resolve(finish({
                calls, seconds: w.seconds, rate: calls / w.seconds,
                p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
                rss_inflight_mb: inflightMemory?.rss, heap_inflight_mb: inflightMemory?.heap,
              }));
            }
          }, false, slot);
        };
        for (let i = 0; i < w.inflight; i++) start(i);
      });

    case 'upload':
    case 'download': {
      const upload = w.kind === 'upload';
      const body = upload ? request(w.size, 4) : request(4, w.size);
      return warmUp().then(() => new Promise((resolve) => {
        const durations: number[] = [];
        let tries = 0;
        const t0 = performance.now();
        const next = () => {
          const started = performance.now();
          caller.call(body, (err, bytes) => {
            if (err) failed(err);
            else if (upload || bytes === w.size) durations.push(performance.now() - started);
            else failed(new Error(`short reply: ${bytes} bytes`));
            const elapsed = (performance.now() - t0) / 1000;
            const calls = durations.length;
            tries++;
            const minCalls = w.minCalls ?? 1;
            if (elapsed < w.seconds || (calls < minCalls && tries < 4 * minCalls)) return next();
            const callMs = [...durations];
            resolve(finish({ calls, seconds: elapsed, mbps: (calls * w.size) / 1e6 / elapsed, p50_ms: percentile(durations, 0.5), call_ms: callMs }));
          });
        };
        next();
      }));
    }

    case 'upgrade': {
      let upgraded = 0;
      let original = 0;
      let aborted = 0;
      return warmUp().then(async () => {
        const latencies = await serial(request(4, 4), w.calls, true, (err, service) => {
          if (err instanceof RxAbortError && !err.local) aborted++;
          else if (err) failed(err);
          else if (service === job.service) original++;
          else upgraded++;
        });
        return finish({
          calls: w.calls, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
          upgraded, original, aborted,
        });
      });
    }

    case 'memory':
      return new Promise((resolve) => {
        const body = request(4, 4);
        const total = w.checkpoints[w.checkpoints.length - 1];
        const rss: Record<string, number> = {};
        const heap: Record<string, number> = {};
        const committed: Record<string, number> = {};
        const t0 = performance.now();
        let started = 0;
        let done = 0;
        const start = () => {
          started++;
          caller.call(body, (err) => {
            if (err) failed(err);
            done++;
            if (w.gc !== false && w.checkpoints.includes(done)) ({ rss: rss[done], heap: heap[done], committed: committed[done] } = memoryMb());
            if (started < total) start();
            else if (done === total) resolve(finish({ calls: done, seconds: (performance.now() - t0) / 1000, rss_mb: rss, heap_mb: heap, committed_mb: committed }));
          });
        };
        for (let i = 0; i < w.inflight && i < total; i++) start();
      });
  }
}

// From the command line (profiling one workload): IMPL PORT SERVICE WORKLOAD-JSON; prints the figures.
if (require.main === module && !process.send) {
  const [impl, port, service, workload] = process.argv.slice(2);
  runJob(impl as 'binding' | 'api', { port: Number(port), service: Number(service), workload: JSON.parse(workload) as Job['workload'] }).then(
    (figures) => console.log(JSON.stringify(figures)),
    (err: Error) => {
      console.error(err);
      process.exit(1);
    },
  );
}

// As a forked worker: { impl, job } in, { figures } or { error } out.
if (require.main === module && process.send) {
  process.on('message', (m: { impl: 'binding' | 'api'; job: Job }) => {
    runJob(m.impl, m.job).then(
      (figures) => process.send!({ figures }),
      (err: Error) => process.send!({ error: String(err.stack ?? err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
