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

/** One call through either implementation. */
interface Caller {
  /** Starts a call; `done` gets the error, the bytes of the reply and the service that answered. */
  call(body: Buffer, done: (err: Error | undefined, bytes: number, service: number) => void, upgrade?: boolean): void;
  close(): void;
}

function bindingCaller(job: Job): Caller {
  const endpoint = new Endpoint();
  endpoint.on('error', () => {});
  if (job.security) {
    endpoint.raw.setSecurityKey(job.security.key);
    endpoint.raw.setMinSecurityLevel(LEVELS[job.security.level]);
  }
  return {
    call(body, done, upgrade = false) {
      const service = upgrade ? job.service : job.service + 1;
      let bytes = 0;
      let c;
      try {
        c = endpoint.startCall({ service, address: ADDRESS, port: job.port }, body, false, { upgrade, exclusive: upgrade });
      } catch (err) {
        done(err as Error, 0, 0);
        return;
      }
      const call = c;
      call.ondata = (chunk) => (bytes += chunk.length);
      call.ondone = (err) => done(err, bytes, call.service);
    },
    close: () => endpoint.close(),
  };
}

function apiCaller(job: Job, maxCallsPerPeer: number): Caller {
  const client = new Client({ maxCallsPerPeer, security: job.security });
  client.on('error', () => {});
  const destination = { address: ADDRESS, port: job.port };
  return {
    call(body, done, upgrade = false) {
      if (upgrade) {
        client.probe(destination, { service: job.service, upgradeTo: job.service + 1, request: body, timeout: 30000 }).then(
          // A probe the server aborted resolves with a fallback; count it as aborted, as the other clients do.
          (r) => (r.abortCode !== undefined ? done(new RxAbortError(r.abortCode), 0, 0) : done(undefined, r.reply?.length ?? 0, r.service)),
          (err: Error) => done(err, 0, 0),
        );
        return;
      }
      client.call({ ...destination, service: job.service + 1 }, body).then(
        (r) => done(undefined, r.data.length, r.service),
        (err: Error) => done(err, 0, 0),
      );
    },
    close: () => client.close(),
  };
}

function makeCaller(impl: Impl, job: Job, inflight: number): Caller {
  return impl === 'binding' ? bindingCaller(job) : apiCaller(job, inflight);
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
    call: (body, done, upgrade) => inner.call(body, (err, bytes, service) => {
      completed++;
      done(err, bytes, service);
    }, upgrade),
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
    check: (err: Error | undefined, service: number) => void = (err) => err && failed(err)) =>
    new Promise<number[]>((resolve) => {
      const latencies: number[] = [];
      const next = () => {
        if (latencies.length >= count) return resolve(latencies);
        const t0 = performance.now();
        caller.call(body, (err, _bytes, service) => {
          latencies.push(performance.now() - t0);
          check(err, service);
          next();
        }, upgrade);
      };
      next();
    });
  const warmUp = () => serial(request(4, 4), 3).then(() => {
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
        const latencies: number[] = [];
        let active = 0;
        const start = () => {
          active++;
          const t0 = performance.now();
          caller.call(body, (err) => {
            active--;
            const t = performance.now();
            if (begin === Infinity) {
              begin = t + w.warmup * 1000;
              end = begin + w.seconds * 1000;
            }
            if (err) failed(err);
            else if (t >= begin && t < end) latencies.push(t - t0);
            if (t < end) start();
            else if (active === 0) {
              const calls = latencies.length;
              resolve(finish({
                calls, seconds: w.seconds, rate: calls / w.seconds,
                p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
              }));
            }
          });
        };
        for (let i = 0; i < w.inflight; i++) start();
      });

    case 'upload':
    case 'download': {
      const upload = w.kind === 'upload';
      const body = upload ? request(w.size, 4) : request(4, w.size);
      return warmUp().then(() => new Promise((resolve) => {
        const durations: number[] = [];
        const t0 = performance.now();
        const next = () => {
          const started = performance.now();
          caller.call(body, (err, bytes) => {
            if (err) failed(err);
            else if (upload || bytes === w.size) durations.push(performance.now() - started);
            else failed(new Error(`short reply: ${bytes} bytes`));
            const elapsed = (performance.now() - t0) / 1000;
            const calls = durations.length;
            if (elapsed < w.seconds || calls < 1) return next();
            resolve(finish({ calls, seconds: elapsed, mbps: (calls * w.size) / 1e6 / elapsed, p50_ms: percentile(durations, 0.5) }));
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
            if (w.checkpoints.includes(done)) ({ rss: rss[done], heap: heap[done], committed: committed[done] } = memoryMb());
            if (started < total) start();
            else if (done === total) resolve(finish({ calls: done, seconds: (performance.now() - t0) / 1000, rss_mb: rss, heap_mb: heap, committed_mb: committed }));
          });
        };
        for (let i = 0; i < w.inflight && i < total; i++) start();
      });
  }
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
