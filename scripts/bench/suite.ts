/**
 * The benchmark suite, run where AF_RXRPC exists (in the kernel VM): starts
 * the three servers (C, binding, api), runs every workload for every client
 * and server pairing, and returns the figures. Pairings take turns within a
 * workload, in alternating order over the rounds, so that a machine whose
 * speed drifts (other VMs on the host) affects them alike.
 *
 * Clients and servers are separate processes: rxbench (C) once per job, a
 * forked Node client worker per implementation (binding, api) kept for the
 * run, and a fresh one for each memory measurement (so that its resident size is its own).
 */
import { ChildProcess, fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRxkadKey, createServerKeyring, mintRxkadToken, randomDesKey } from '../../lib/security';
import { Figures, Impl, Job, Level, LEVELS, percentile, Workload } from './common';
import { mergeProfiles, record, Role, summarize } from './perf';

export interface Pairing {
  client: Impl;
  server: Impl;
}

/** C/C first: it is the reference of every ratio. */
export const PAIRINGS: Pairing[] = [
  { client: 'c', server: 'c' },
  { client: 'binding', server: 'c' },
  { client: 'api', server: 'c' },
  { client: 'c', server: 'binding' },
  { client: 'c', server: 'api' },
  { client: 'binding', server: 'binding' },
  { client: 'api', server: 'api' },
];

export interface Parameters {
  /**
   * Small calls (64 in flight) each Node client makes against its own Node
   * server before anything is measured: V8 compiles the hot paths as they
   * run, and under emulation compiling them takes tens of seconds of the
   * guest's CPU (see scripts/bench/README.md, The warm-up).
   */
  warmupCalls: number;
  /** Leave V8's memory reducer on in the Node processes that take turns (guest.js --memory-reducer). */
  memoryReducer?: boolean;
  small: { inflight: number[]; seconds: number; warmup: number; rounds: number };
  /** Bulk calls one at a time: for at least `seconds` and `minCalls` calls (default 1) per round. */
  bulk: Array<{ size: number; seconds: number; rounds: number; minCalls?: number }>;
  /**
   * Upgrade probes, made the same way by every client: from a local endpoint
   * that has made plain calls to the probed service of that server first (the
   * warm-up), or with `fresh`, each from a new local endpoint (a new client).
   */
  upgrade: { calls: number; fresh: boolean };
  memory: { inflight: number; checkpoints: number[] };
  /**
   * rxkad at each level: small calls at `inflight` and bulk calls of `bulk`
   * bytes, rounds as above. One call at a time: 6.1 panics (BUG() in
   * rxrpc_new_incoming_call) when a call arrives on a secured service
   * connection whose challenge is still in progress, as the second of
   * several calls started at once on a new connection does.
   */
  security: { levels: Level[]; inflight: number; bulk: number };
  /**
   * How cost grows: small calls at each number in flight (spread over server
   * ports and local endpoints, see spreadFor), and `peersInflight` calls
   * spread over each number of local endpoints (peers of the server), for
   * the pairings named (client/server).
   */
  scale: { inflight: number[]; peers: number[]; peersInflight: number; peersPorts: number; seconds: number; warmup: number; pairs: string[] };
}

/**
 * Server ports and local endpoints for `inflight` calls: at most 16 calls per
 * server port (its accept pool holds 31) and at most 8 per (local endpoint,
 * server port), half the 16 calls the kernel lets such a pair have at once,
 * so that neither limit is the wall being measured.
 */
export function spreadFor(inflight: number): { ports: number; endpoints: number } {
  const ports = Math.min(64, Math.max(1, Math.ceil(inflight / 16)));
  return { ports, endpoints: Math.max(1, Math.ceil(inflight / (8 * ports))) };
}

/**
 * About 25 minutes in the VM under emulation, where a C client makes some
 * 300-800 small calls/s and a Node one 100-300: most of it is the memory
 * figure's 100,000 calls per client (`--memory-calls N` sets another last
 * checkpoint, `--only` picks workloads).
 */
export const FULL: Parameters = {
  warmupCalls: 20000,
  small: { inflight: [1, 16, 64], seconds: 3, warmup: 0.5, rounds: 3 },
  bulk: [{ size: 1 << 20, seconds: 1.5, rounds: 2, minCalls: 3 }, { size: 16 << 20, seconds: 0, rounds: 1, minCalls: 3 }],
  upgrade: { calls: 10, fresh: false },
  memory: { inflight: 16, checkpoints: [1000, 10000, 100000] },
  security: { levels: ['auth', 'encrypt'], inflight: 1, bulk: 1 << 20 },
  scale: {
    inflight: [1, 4, 16, 64, 256, 1024], peers: [1, 10, 30, 100], peersInflight: 100, peersPorts: 8, seconds: 1.5, warmup: 0.5,
    pairs: ['c/c', 'binding/c', 'api/c', 'c/api', 'api/api'],
  },
};

export const SMOKE: Parameters = {
  warmupCalls: 300,
  small: { inflight: [1, 16, 64], seconds: 0.5, warmup: 0.2, rounds: 1 },
  bulk: [{ size: 64 << 10, seconds: 0, rounds: 1 }, { size: 256 << 10, seconds: 0, rounds: 1, minCalls: 3 }],
  upgrade: { calls: 2, fresh: false },
  memory: { inflight: 16, checkpoints: [20, 100] },
  security: { levels: ['auth', 'encrypt'], inflight: 1, bulk: 64 << 10 },
  scale: { inflight: [1, 64], peers: [4], peersInflight: 16, peersPorts: 2, seconds: 0.3, warmup: 0.1, pairs: ['c/c', 'api/c', 'api/api'] },
};

export interface Row extends Pairing {
  /** e.g. small-64, upload-1MiB, upgrade; rxkad rows end in the level: small-16-encrypt. */
  workload: string;
  figures: Figures;
}

export interface Report {
  kernel: string;
  date: string;
  node: string;
  smoke: boolean;
  parameters: Parameters;
  /** net.rxrpc.max_backlog during the run, and the servers' listen backlog. */
  backlog: number;
  rows: Row[];
  /** Memory of each client against the C server. */
  memory: Array<{ client: Impl; figures: Figures }>;
  /** Wall-clock seconds the suite took. */
  seconds: number;
  /** What the guest's clock counts, when it is not real time (RXRPC_BENCH_CLOCK, set by bench.js with --icount). */
  clock?: string;
}

export interface SuiteOptions {
  smoke?: boolean;
  parameters?: Parameters;
  /** The compiled rxbench. */
  rxbench: string;
  /** Run only the workloads whose names start with one of these (small, upload, download, upgrade, memory). */
  only?: string[];
  /** Run only these pairings ('client/server', e.g. 'api/c'); C/C always runs, as the reference. */
  pairs?: string[];
  basePort?: number;
  service?: number;
  /**
   * Profile every small-call job with perf (every CPU, cpu-clock at
   * `frequency` Hz), the data in `dir`; the Node processes run with
   * --perf-basic-prof. Each row's figures get its profile.
   */
  perf?: { dir: string; frequency: number };
  log?: (line: string) => void;
}

const MAX_BACKLOG = '/proc/sys/net/rxrpc/max_backlog';

/** Raises net.rxrpc.max_backlog to 31 (root only) and returns what is in force. */
function raiseBacklog(): number {
  try {
    writeFileSync(MAX_BACKLOG, '31');
  } catch {
    // Not root: the kernel's limit stays, and bursts may fail on 6.1.
  }
  return Number(readFileSync(MAX_BACKLOG, 'utf8')) || 10;
}

export function sizeName(bytes: number): string {
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)}MiB` : `${bytes / 1024}KiB`;
}

/** Rounds of one workload merged into one set of figures. */
function merge(list: Figures[], workload: Workload): Figures {
  const sum = (k: keyof Figures) => list.reduce((n, f) => n + ((f[k] as number | undefined) ?? 0), 0);
  const mean = (k: keyof Figures) => sum(k) / list.length;
  const failures: Record<string, number> = {};
  for (const f of list) for (const [k, v] of Object.entries(f.failures ?? {})) failures[k] = (failures[k] ?? 0) + v;
  const out: Figures = { calls: sum('calls'), errors: sum('errors'), seconds: sum('seconds') };
  if (Object.keys(failures).length) out.failures = failures;
  // CPU per call, or per MB for bulk calls.
  const units = workload.kind === 'upload' || workload.kind === 'download' ? (sum('calls') * workload.size) / 1e6 : sum('total_calls');
  if (units > 0) {
    out.client_cpu_ms = (sum('cpu_s') * 1000) / units;
    out.server_cpu_ms = (sum('server_cpu_s') * 1000) / units;
    if (list.some((f) => f.kernel_cpu_s)) {
      const threads: Record<string, number> = {};
      for (const f of list) for (const [k, v] of Object.entries(f.kernel_cpu_s ?? {})) threads[k] = (threads[k] ?? 0) + v;
      out.kernel_cpu_s = threads;
      out.kernel_cpu_ms = (Object.values(threads).reduce((a, b) => a + b, 0) * 1000) / units;
    }
    if (list.some((f) => f.irq_cpu_s !== undefined)) {
      out.irq_cpu_s = sum('irq_cpu_s');
      out.irq_cpu_ms = (out.irq_cpu_s * 1000) / units;
    }
  }
  if (list.length > 1) out.rounds = list;
  const profile = mergeProfiles(list.flatMap((f) => (f.profile ? [f.profile] : [])));
  if (profile) out.profile = profile;
  if (workload.kind === 'small') {
    out.rate = out.calls / out.seconds!;
    out.p50_ms = mean('p50_ms');
    out.p99_ms = mean('p99_ms');
    if (list[0].rss_inflight_mb !== undefined) out.rss_inflight_mb = mean('rss_inflight_mb');
    if (list[0].heap_inflight_mb !== undefined) out.heap_inflight_mb = mean('heap_inflight_mb');
  } else if (workload.kind === 'upload' || workload.kind === 'download') {
    out.mbps = (out.calls * workload.size) / 1e6 / out.seconds!;
    // Every call of every round: the median call (a long stall in one call,
    // kernel retransmission, moves it little) and the spread.
    const calls = list.flatMap((f) => f.call_ms ?? (f.p50_ms ? [f.p50_ms] : [])).filter((v) => v > 0);
    if (calls.length) {
      const size = workload.size / 1e3;
      out.call_ms = calls;
      out.mbps_median = size / percentile([...calls], 0.5);
      out.mbps_min = size / Math.max(...calls);
      out.mbps_max = size / Math.min(...calls);
    }
  } else if (workload.kind === 'upgrade') {
    Object.assign(out, { p50_ms: mean('p50_ms'), p99_ms: mean('p99_ms'), upgraded: sum('upgraded'), original: sum('original'), aborted: sum('aborted') });
  }
  return out;
}

function cArgs(w: Workload): string[] {
  switch (w.kind) {
    case 'small':
      return ['--inflight', w.inflight, '--seconds', w.seconds, '--warmup', w.warmup,
        ...(w.ports ? ['--ports', w.ports] : []), ...(w.endpoints ? ['--endpoints', w.endpoints] : [])].map(String);
    case 'upload':
    case 'download':
      return ['--size', w.size, '--seconds', w.seconds, '--min-calls', w.minCalls ?? 1].map(String);
    case 'upgrade':
      return ['--calls', String(w.calls), '--fresh', w.fresh ? '1' : '0'];
    case 'memory':
      return ['--inflight', String(w.inflight), '--checkpoints', w.checkpoints.join(',')];
  }
}

/** How long a job may take before it counts as hung. */
function jobTimeout(w: Workload): number {
  switch (w.kind) {
    case 'small':
      return (2 * w.warmup + w.seconds) * 1000 + 60000;
    case 'upload':
    case 'download':
      return w.seconds * 1000 + 300000 * (w.minCalls ?? 1);
    case 'upgrade':
      return w.calls * 30000 + 30000;
    case 'memory':
      return w.checkpoints[w.checkpoints.length - 1] * 50 + 60000;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => (timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`no result within ${Math.round(ms / 1000)} s`));
    }, ms))),
  ]).finally(() => clearTimeout(timer));
}

function runC(rxbench: string, job: Job, w: Workload, started?: (pid: number) => void): Promise<Figures> {
  const security = job.security ? ['--key', job.security.key, '--level', String(LEVELS[job.security.level])] : [];
  const child = spawn(rxbench, ['client', '--port', String(job.port), '--service', String(job.service),
    '--workload', w.kind, ...cArgs(w), ...security], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) started?.(child.pid);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<Figures>((resolve, reject) => {
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(line) as Figures & { elapsed?: number };
        resolve({ ...r, seconds: r.seconds ?? r.elapsed });
      } catch {
        reject(new Error(`rxbench client exited ${code}: ${err.trim() || out.trim()}`));
      }
    });
  });
  return withTimeout(done, jobTimeout(w), () => child.kill('SIGKILL'));
}

/** A forked Node client worker. */
class NodeClient {
  private child: ChildProcess;
  private waiting: ((m: { figures?: Figures; error?: string }) => void) | undefined;
  constructor(extra: string[]) {
    this.child = fork(join(__dirname, 'node-client.js'), [], { execArgv: ['--expose-gc', ...extra], stdio: ['ignore', 2, 2, 'ipc'] });
    this.child.on('message', (m: { figures?: Figures; error?: string }) => this.waiting?.(m));
    this.child.on('exit', (code) => this.waiting?.({ error: `node client worker exited (${code})` }));
  }
  run(impl: 'binding' | 'api', job: Job): Promise<Figures> {
    const done = new Promise<Figures>((resolve, reject) => {
      this.waiting = (m) => {
        this.waiting = undefined;
        if (m.figures) resolve(m.figures);
        else reject(new Error(m.error));
      };
    });
    this.child.send({ impl, job });
    return withTimeout(done, jobTimeout(job.workload), () => this.child.kill('SIGKILL'));
  }
  get pid(): number {
    return this.child.pid ?? 0;
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  close(): void {
    if (this.alive) this.child.kill();
  }
}

interface Servers {
  ports: Record<Impl, number>;
  pids: Record<Impl, number>;
  close(): void;
}

/** Seconds a task has run on a CPU, from its schedstat file (the first field, ns). */
function ranSeconds(schedstat: string): number {
  return Number(readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e9;
}

/**
 * CPU seconds each kernel thread (a child of kthreadd, pid 2) has run so far,
 * by name without its number ("krxrpcio/18400" -> "krxrpcio", "kworker/0:1-events"
 * -> "kworker"), from /proc (schedstat: ns).
 */
export function kernelThreadsCpu(proc = '/proc'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of readdirSync(proc)) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`${proc}/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid !== 2) continue;
      const name = stat.slice(stat.indexOf('(') + 1, close).replace(/[/:-].*$/, '');
      out[name] = (out[name] ?? 0) + ranSeconds(`${proc}/${pid}/schedstat`);
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** What ran between two kernelThreadsCpu() readings; threads that ran nothing left out. */
export function kernelCpuSince(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(after)) {
    const d = s - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

/** CPU seconds in hard and soft interrupts so far, all CPUs (/proc/stat, USER_HZ ticks). */
export function irqCpu(stat = '/proc/stat'): number {
  const f = readFileSync(stat, 'utf8').split('\n')[0].trim().split(/\s+/);
  return (Number(f[6]) + Number(f[7])) / 100;
}

/** CPU seconds a process's threads have run so far (user + system), from /proc (schedstat: ns). */
function cpuOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/task`).reduce((n, t) => n + ranSeconds(`/proc/${pid}/task/${t}/schedstat`), 0);
  } catch {
    return NaN;
  }
}

/** Each server listens on `count` consecutive ports from its first. */
async function startServers(rxbench: string, basePort: number, service: number, backlog: number, count: number,
  keyring: string, nodeFlags: string[]): Promise<Servers> {
  const ports: Record<Impl, number> = { c: basePort, binding: basePort + count, api: basePort + 2 * count };
  const c = spawn(rxbench, ['server', '--port', String(ports.c), '--ports', String(count), '--service', String(service),
    '--backlog', String(backlog), '--keyring', keyring], { stdio: ['pipe', 'pipe', 'inherit'] });
  const node = fork(join(__dirname, 'node-server.js'), [...[ports.binding, ports.api, service, backlog, count].map(String), keyring],
    { execArgv: nodeFlags, stdio: ['ignore', 2, 2, 'ipc'] });
  const close = () => {
    c.stdin!.end();
    if (node.connected) node.disconnect();
  };
  const exited = (name: string) => (code: number | null) => `${name} server exited (${code}) before it was ready`;
  try {
    await Promise.all([
      new Promise<void>((resolve, reject) => {
        c.stdout!.once('data', () => resolve());
        c.once('exit', (code) => reject(new Error(exited('C')(code))));
      }),
      new Promise<void>((resolve, reject) => {
        node.once('message', () => resolve());
        node.once('exit', (code) => reject(new Error(exited('Node')(code))));
      }),
    ]);
  } catch (err) {
    close();
    throw err;
  }
  return { ports, pids: { c: c.pid!, binding: node.pid!, api: node.pid! }, close };
}

export async function runSuite(options: SuiteOptions): Promise<Report> {
  const started = Date.now();
  const params = options.parameters ?? (options.smoke ? SMOKE : FULL);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const service = options.service ?? 4100;
  const backlog = Math.min(31, raiseBacklog());
  const wantedEarly = (name: string) => !options.only || options.only.some((prefix) => name.startsWith(prefix));
  const scaling = wantedEarly('scale') || wantedEarly('peers');
  const serverPorts = scaling ? Math.max(params.scale.peersPorts, ...params.scale.inflight.map((n) => spreadFor(n).ports)) : 1;
  // rxkad keys in the session keyring, which the client and server processes inherit
  // (a process keyring is not): the servers' keyring, and a token minted from its key.
  const secret = randomDesKey();
  const keyring = createServerKeyring([service, service + 1], [{ secret }], { keyring: 'session' });
  const key = createRxkadKey(mintRxkadToken({ serverKey: secret, kvno: 1, name: 'bench' }), { keyring: 'session' });
  // RXRPC_BENCH_NODE_FLAGS: extra V8/Node flags for the Node clients (e.g. --max-semi-space-size=1).
  const extraFlags = (process.env.RXRPC_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  // The processes that take turns with others sit idle between their jobs;
  // V8's memory reducer then runs its shrinking mark-compacts, which drop the
  // optimized code, and every job would begin by compiling it all again
  // (tens of seconds of the guest's CPU: scripts/bench/README.md, The
  // warm-up). The memory figure's fresh clients run with V8's defaults.
  const steady = params.memoryReducer ? [] : ['--no-memory-reducer'];
  const clientFlags = [...steady, ...extraFlags];
  const serverFlags: string[] = [...steady];
  // --perf-basic-prof turns V8's event log on too; where it cannot write its
  // log file (the guest's working directory is read-only) it writes to stdout.
  if (options.perf) for (const flags of [clientFlags, serverFlags]) flags.push('--perf-basic-prof', `--logfile=${join(tmpdir(), 'rxbench-v8-%p.log')}`);
  const servers = await startServers(options.rxbench, options.basePort ?? 18400, service, backlog, serverPorts, keyring.description, serverFlags);
  // One client worker per Node implementation: in one process, the binding's
  // and the Client's jobs taking turns changed the type feedback of the code
  // they share, and V8 compiled it again at every turn.
  const workers: Partial<Record<'binding' | 'api', NodeClient>> = {};
  const workerFor = (impl: 'binding' | 'api') => {
    if (!workers[impl]?.alive) workers[impl] = new NodeClient(clientFlags);
    return workers[impl]!;
  };
  const closeWorkers = () => {
    for (const w of Object.values(workers)) w.close();
  };
  let profiles = 0;
  const rows: Row[] = [];
  const memory: Report['memory'] = [];

  const run = async (client: Impl, server: Impl, workload: Workload, level?: Level): Promise<Figures> => {
    const job: Job = { port: servers.ports[server], service, workload, security: level && { key: key.description, level } };
    try {
      const before = cpuOf(servers.pids[server]);
      const kernelBefore = kernelThreadsCpu();
      const irqBefore = irqCpu();
      const pids = new Map<number, Role>([[servers.pids[server], 'server']]);
      const perf = options.perf;
      const file = perf && workload.kind === 'small' && !level
        ? join(perf.dir, `${workload.inflight}-${client}-${server}-${++profiles}.data`) : undefined;
      const profiling = file ? await record(file, perf!.frequency) : undefined;
      let started: Promise<Figures>;
      if (client === 'c') {
        started = runC(options.rxbench, job, workload, (pid) => pids.set(pid, 'client'));
      } else {
        const w = workerFor(client);
        pids.set(w.pid, 'client');
        started = w.run(client, job);
      }
      const figures = await started.finally(() => profiling?.stop());
      const cpu = { server_cpu_s: cpuOf(servers.pids[server]) - before, kernel_cpu_s: kernelCpuSince(kernelBefore, kernelThreadsCpu()),
        irq_cpu_s: irqCpu() - irqBefore };
      if (!file) return { ...figures, ...cpu };
      return { ...figures, ...cpu, profile: { ...summarize(file, pids, perf!.frequency, 100), calls: figures.total_calls } };
    } catch (err) {
      log(`  ${client}: ${(err as Error).message}`);
      return { calls: 0, errors: 1, failures: { [(err as Error).message]: 1 } };
    }
  };

  const pairings = PAIRINGS.filter((p) => !options.pairs || (p.client === 'c' && p.server === 'c') ||
    options.pairs.includes(`${p.client}/${p.server}`));
  const wanted = (name: string) => !options.only || options.only.some((prefix) => name.startsWith(prefix));
  const measure = async (name: string, workload: Workload, rounds: number, only = pairings, level?: Level) => {
    if (!wanted(name)) return;
    const pairings = only;
    const results = pairings.map(() => [] as Figures[]);
    for (let r = 0; r < rounds; r++) {
      const order = pairings.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const i of order) {
        const p = pairings[i];
        results[i].push(await run(p.client, p.server, workload, level));
      }
    }
    pairings.forEach((p, i) => rows.push({ ...p, workload: name, figures: merge(results[i], workload) }));
    log(`${name}: done (${Math.round((Date.now() - started) / 1000)} s)`);
  };

  try {
    // Node compiles its hot paths as it runs them: warm the client worker and
    // both Node servers before anything is measured (rxbench has nothing to warm).
    const warm: Workload[] = [
      { kind: 'memory', inflight: 64, checkpoints: [params.warmupCalls], gc: false },
      // One at a time takes paths of its own: after a warm-up at 64 in flight alone, the first 1-in-flight
      // round spent 0.7-1.7 ms per call of the Node clients in TurboFan (6.1, --perf).
      { kind: 'memory', inflight: 1, checkpoints: [Math.ceil(params.warmupCalls / 10)], gc: false },
      { kind: 'upload', size: params.bulk[0].size, seconds: 0 },
      { kind: 'download', size: params.bulk[0].size, seconds: 0 },
    ];
    for (const impl of ['binding', 'api'] as const) {
      for (const w of warm) {
        const f = await run(impl, impl, w);
        if (w.kind === 'memory') log(`warm-up ${impl}/${impl}, ${w.inflight} in flight: ${f.calls} calls at ${f.seconds ? Math.round(f.calls / f.seconds) : 0} calls/s`);
      }
    }
    log(`warm-up: done (${Math.round((Date.now() - started) / 1000)} s)`);
    const s = params.small;
    for (const inflight of s.inflight) {
      await measure(`small-${inflight}`, { kind: 'small', inflight, seconds: s.seconds, warmup: s.warmup }, s.rounds);
    }
    for (const b of params.bulk) {
      for (const kind of ['upload', 'download'] as const) {
        await measure(`${kind}-${sizeName(b.size)}`, { kind, size: b.size, seconds: b.seconds, minCalls: b.minCalls }, b.rounds);
      }
    }
    const sec = params.security;
    for (const level of sec.levels) {
      await measure(`small-${sec.inflight}-${level}`, { kind: 'small', inflight: sec.inflight, seconds: s.seconds, warmup: s.warmup }, s.rounds, pairings, level);
      for (const kind of ['upload', 'download'] as const) {
        const bulk = params.bulk.find((b) => b.size === sec.bulk) ?? params.bulk[0];
        await measure(`${kind}-${sizeName(sec.bulk)}-${level}`, { kind, size: sec.bulk, seconds: bulk.seconds, minCalls: bulk.minCalls }, bulk.rounds, pairings, level);
      }
    }
    await measure('upgrade', { kind: 'upgrade', calls: params.upgrade.calls, fresh: params.upgrade.fresh }, 1);
    const sc = params.scale;
    const scalePairs = pairings.filter((p) => sc.pairs.includes(`${p.client}/${p.server}`));
    for (const inflight of sc.inflight) {
      await measure(`scale-${inflight}`, { kind: 'small', inflight, seconds: sc.seconds, warmup: sc.warmup, heap: true, ...spreadFor(inflight) }, 1, scalePairs);
    }
    for (const peers of sc.peers) {
      await measure(`peers-${peers}`, { kind: 'small', inflight: Math.max(sc.peersInflight, peers), seconds: sc.seconds, warmup: sc.warmup,
        ports: sc.peersPorts, endpoints: peers }, 1, scalePairs);
    }
    closeWorkers();
    const m: Workload = { kind: 'memory', ...params.memory };
    for (const client of wanted('memory') ? (['c', 'binding', 'api'] as const) : []) {
      // A fresh process, V8's defaults: its resident size is this workload's alone.
      if (client !== 'c') workers[client] = new NodeClient(extraFlags);
      memory.push({ client, figures: await run(client, 'c', m) });
      closeWorkers();
    }
    if (wanted('memory')) log(`memory: done (${Math.round((Date.now() - started) / 1000)} s)`);
  } finally {
    closeWorkers();
    servers.close();
    key.close();
    keyring.close();
  }

  let debian = '';
  try {
    debian = /.*Debian (\S+)/.exec(readFileSync('/proc/version', 'utf8'))?.[1] ?? '';
  } catch {
    // Not Debian's kernel.
  }
  return {
    kernel: `${release()}${debian ? ` (Debian ${debian})` : ''}`,
    date: new Date().toISOString(),
    node: process.version,
    smoke: options.smoke ?? false,
    parameters: params,
    backlog,
    rows,
    memory,
    seconds: (Date.now() - started) / 1000,
    ...(process.env.RXRPC_BENCH_CLOCK ? { clock: process.env.RXRPC_BENCH_CLOCK } : {}),
  };
}
