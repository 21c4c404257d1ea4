/**
 * What the benchmark's processes exchange: the workloads, the figures each
 * client reports, and the wire protocol shared with rxbench.c (the first 4
 * bytes of a request, big-endian, are the size of the reply).
 */

/** Which implementation plays a side: the C reference, the binding (Endpoint), or the Client/Server API. */
export type Impl = 'c' | 'binding' | 'api';

/**
 * Small calls keep `inflight` calls running; with `ports` and `endpoints`,
 * call number k in flight goes from local endpoint k mod endpoints (each a
 * socket bound to a private UDP port; a Client or Endpoint of its own) to
 * server port `port + (k / endpoints) mod ports`. Without them, one client
 * socket and one server port (the C client's socket unbound, as before).
 * With `heap`, a Node client takes its resident size and V8 heap after a full
 * GC when the window closes, with every slot's call in flight, and its calls
 * go on `warmup` seconds more: V8 compiles again what the GC made it drop
 * within the job, not in the next one. (rxbench reports its resident size
 * with the calls in flight in every small job; it has no GC.) A memory
 * workload with `gc: false` (the warm-up) forces no GC at its checkpoints.
 */
export type Workload =
  | { kind: 'small'; inflight: number; seconds: number; warmup: number; ports?: number; endpoints?: number; heap?: boolean }
  | { kind: 'upload' | 'download'; size: number; seconds: number; minCalls?: number }
  | { kind: 'upgrade'; calls: number; fresh?: boolean }
  | { kind: 'memory'; inflight: number; checkpoints: number[]; gc?: boolean };

/** rxkad levels the benchmark measures, with RXRPC_MIN_SECURITY_LEVEL's numbers. */
export const LEVELS = { auth: 1, encrypt: 2 } as const;
export type Level = keyof typeof LEVELS;

export interface Job {
  /** The server's first port; a workload with `ports` uses the ones after it too. */
  port: number;
  /** The server binds `service` (upgradeable) and `service + 1`; workloads call `service + 1`, probes `service`. */
  service: number;
  workload: Workload;
  /** rxkad calls: the client's "rxrpc" key (by description, in the session keyring) and the level. */
  security?: { key: string; level: Level };
}

/** One client run's figures; which fields are set depends on the workload. */
export interface Figures {
  calls: number;
  errors: number;
  /** Seconds measured (small) or elapsed (bulk). */
  seconds?: number;
  rate?: number;
  p50_ms?: number;
  p99_ms?: number;
  mbps?: number;
  /** Bulk: throughput of the median call, MB/s. */
  mbps_median?: number;
  /** Bulk: of the slowest and the fastest call, MB/s. */
  mbps_min?: number;
  mbps_max?: number;
  /** Bulk: each call's duration, ms. */
  call_ms?: number[];
  /** Small calls: the client's resident size with the calls in flight, MB (a Node client's only with `heap`, with its V8 heap in use after a GC). */
  rss_inflight_mb?: number;
  heap_inflight_mb?: number;
  upgraded?: number;
  original?: number;
  aborted?: number;
  /** Resident size in MB (10^6 bytes) after each checkpoint's number of calls. */
  rss_mb?: Record<string, number>;
  /** Node only: V8 heap in use after a full GC at each checkpoint, MB. */
  heap_mb?: Record<string, number>;
  /** Node only: memory V8 holds for its heap (heapTotal: committed, young generation included), MB. */
  committed_mb?: Record<string, number>;
  /** CPU seconds of the client process over the job (all threads, user + system). */
  cpu_s?: number;
  /** CPU seconds of the server process over the job. */
  server_cpu_s?: number;
  /** Calls that ended during the job, warm-up included. */
  total_calls?: number;
  /**
   * CPU seconds of the kernel's own threads over the job (children of
   * kthreadd: rxrpc's I/O threads krxrpcio/PORT on 6.2 on, the workqueues'
   * kworkers that do its work on 6.1, ksoftirqd, RCU), which no process is
   * charged for; by thread name without its number.
   */
  kernel_cpu_s?: Record<string, number>;
  /**
   * CPU seconds spent in hard and soft interrupts over the job (/proc/stat's
   * irq and softirq, tick-sampled; where the kernel does not account
   * interrupt time apart, part of it is also in the tasks' times).
   */
  irq_cpu_s?: number;
  /** Client and server CPU per call (small, memory, upgrade) or per MB (bulk), in ms. */
  client_cpu_ms?: number;
  server_cpu_ms?: number;
  /** The kernel's threads' and interrupts' CPU, per call or per MB as above, in ms. */
  kernel_cpu_ms?: number;
  irq_cpu_ms?: number;
  /** Each round's figures, when the workload ran in rounds. */
  rounds?: Figures[];
  /** Where the CPU went (guest.js --perf DIR): perf's samples by process and category. */
  profile?: import('./perf').Profile;
  /** Why calls failed, by error code, when some did. */
  failures?: Record<string, number>;
}

export const ADDRESS = '127.0.0.1';

/** A request whose first 4 bytes ask for `reply` bytes back. */
export function request(size: number, reply: number): Buffer {
  const b = Buffer.alloc(Math.max(4, size), 0x5a);
  b.writeUInt32BE(reply, 0);
  return b;
}

/** The p-th quantile (nearest rank) of the values, in place. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[Math.round(p * (values.length - 1))];
}

export function errorKey(err: unknown): string {
  const e = err as { abortName?: string; abortCode?: number; code?: string; name?: string };
  return e.abortName ?? (e.abortCode !== undefined ? String(e.abortCode) : e.code ?? e.name ?? String(err));
}
