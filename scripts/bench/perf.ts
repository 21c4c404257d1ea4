/**
 * Where a workload's CPU goes: `perf record -a` (cpu-clock, every CPU) over
 * a job, its samples split by process (client, server, the rest) and by what
 * ran (kernel, the addon, the library's JavaScript, Node's, V8's builtins and
 * garbage collector, libuv, libc). With the guest's instruction clock a
 * sample is a count of instructions, so the split is of work done.
 *
 * The Node processes run with --perf-basic-prof (suite.ts adds it when
 * profiling), which writes /tmp/perf-PID.map: the names of JIT-compiled
 * functions, with their source file, for perf to read.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export type Role = 'client' | 'server' | 'other';

export interface Profile {
  /** Sampling frequency (Hz) and samples taken. */
  frequency: number;
  samples: number;
  /** Calls the client finished while perf ran (suite.ts sets it), for figures per call. */
  calls?: number;
  /** Milliseconds of samples per role and category (a sample is 1000/frequency ms of CPU). */
  ms: Record<Role, Record<string, number>>;
  /** The symbols with most samples per role: [category, symbol, ms]. */
  top: Record<Role, Array<[string, string, number]>>;
  /**
   * Milliseconds of samples per role and thread: 'main' (the process's first
   * thread: Node's event loop), the addon's named threads ('rxrpc-send',
   * 'rxrpc-bulk'), and 'other threads' (V8's workers, libuv's pool).
   */
  threads?: Record<Role, Record<string, number>>;
}

/** Which thread a sample ran on, from its process and thread ids and the thread's name. */
export function threadKind(pid: number, tid: number, comm: string): string {
  if (tid === pid) return 'main';
  return comm.startsWith('rxrpc-') ? comm : 'other threads';
}

/**
 * Starts recording every CPU into `file` and resolves once perf is sampling
 * (perf starts with its events disabled and enables them when told through
 * its control FIFO, after its own setup, which takes seconds in the emulated
 * guest); `stop()` ends the recording and resolves when perf has written it.
 */
export async function record(file: string, frequency: number): Promise<{ stop(): Promise<void> }> {
  // FIFOs where they can be made (the file may be on a shared filesystem that has none).
  const base = join(tmpdir(), `rxbench-perf-${process.pid}-${basename(file)}`);
  const ctl = `${base}.ctl`;
  const ack = `${base}.ack`;
  for (const fifo of [ctl, ack]) {
    rmSync(fifo, { force: true });
    const made = spawnSync('mkfifo', [fifo]);
    if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed`);
  }
  const perf = spawn('perf', ['record', '-q', '-a', '-e', 'cpu-clock', '-F', String(frequency), '-D', '-1',
    '--control', `fifo:${ctl},${ack}`, '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  perf.stderr.on('data', (d) => (err += d));
  const closed = new Promise<void>((resolve, reject) => {
    perf.on('error', reject);
    perf.on('close', (code, signal) => (code === 0 || signal === 'SIGINT' ? resolve() : reject(new Error(`perf record exited ${code}: ${err.trim()}`))));
  });
  const enabled = (async () => {
    // perf opens both FIFOs read-write, so neither open waits for it.
    const control = await open(ctl, 'r+');
    const answer = await open(ack, 'r+');
    try {
      await control.write('enable\n');
      const buf = Buffer.alloc(16);
      const { bytesRead } = await answer.read(buf, 0, buf.length);
      if (!buf.subarray(0, bytesRead).toString().startsWith('ack')) throw new Error('perf did not acknowledge "enable"');
    } finally {
      await control.close();
      await answer.close();
    }
  })();
  await Promise.race([enabled, closed.then(() => Promise.reject(new Error(`perf record ended before it sampled: ${err.trim()}`)))]);
  return {
    stop: async () => {
      perf.kill('SIGINT');
      await closed;
      for (const fifo of [ctl, ack]) rmSync(fifo, { force: true });
    },
  };
}

const LIBRARY = /\/(?:build|dist)\/lib\//;

/** What ran, from a sample's object (dso) and symbol. */
export function category(dso: string, sym: string): string {
  if (dso === '[kernel.kallsyms]' || dso.startsWith('[')) return dso === '[unknown]' ? 'unknown' : 'kernel';
  if (/\/rxrpc\.ko/.test(dso) || dso === '[rxrpc]') return 'kernel';
  if (dso.endsWith('.ko') || dso.endsWith('.ko.xz')) return 'kernel';
  if (dso.endsWith('rxrpc.node')) return 'addon';
  if (/perf-\d+\.map$/.test(dso) || dso.startsWith('JIT') || dso === '//anon') {
    if (LIBRARY.test(sym)) return 'JS: library';
    if (/\/scripts\/bench\//.test(sym)) return 'JS: benchmark';
    if (/node:|\binternal\//.test(sym)) return 'JS: Node';
    if (/^(?:Builtin|BytecodeHandler|Stub|RegExp)[:_]/.test(sym)) return 'V8 builtins';
    return 'JS: other';
  }
  if (/\/node$|\/nodejs$/.test(dso)) {
    if (/^Builtins_/.test(sym)) return /Handler$|^Builtins_InterpreterEntryTrampoline/.test(sym) ? 'V8 interpreter' : 'V8 builtins';
    // IterateObjectCache: the roots every scavenge visits (the startup object cache).
    if (/Heap|Scaveng|MarkCompact|Sweep|Evacuat|Marking|GCTracer|heap::|Space::|Allocat|MemoryChunk|Remembered|SlotSet|IterateObjectCache/.test(sym)) return 'V8 GC and heap';
    if (/^uv_|^uv__/.test(sym)) return 'libuv';
    if (/napi_|v8impl|^node::|node::/.test(sym)) return 'Node and N-API';
    return 'V8 runtime';
  }
  if (/libc\.so|libc-|ld-linux/.test(dso)) return 'libc';
  if (/libstdc\+\+|libgcc/.test(dso)) return 'libstdc++';
  if (/rxbench$/.test(dso)) return 'rxbench';
  return 'other';
}

/**
 * Splits the samples of `file` by role (`pids`: process id -> role; every
 * other process, idle included, is 'other') and category.
 */
export function summarize(file: string, pids: Map<number, Role>, frequency: number, topN = 25): Profile {
  const out = spawnSync('perf', ['script', '-i', file, '-F', 'comm,pid,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (out.status !== 0) throw new Error(`perf script exited ${out.status}: ${out.stderr.trim()}`);
  return tally(out.stdout, pids, frequency, topN);
}

/** Milliseconds by key for each role, empty. */
const perRole = (): Record<Role, Record<string, number>> => ({ client: {}, server: {}, other: {} });
const add = (into: Record<string, number>, key: string, ms: number) => (into[key] = (into[key] ?? 0) + ms);

/** tally() of `perf script -F comm,pid,tid,ip,sym,dso` output: one sample per line. */
export function tally(script: string, pids: Map<number, Role>, frequency: number, topN = 25): Profile {
  const ms = perRole();
  const threads = perRole();
  const symbols: Record<Role, Map<string, number>> = { client: new Map(), server: new Map(), other: new Map() };
  const each = 1000 / frequency;
  let samples = 0;
  for (const line of script.split('\n')) {
    // "  COMM  PID/TID  ADDR SYMBOL+0xOFF (DSO)" or "... ADDR [unknown] (DSO)"; COMM may hold spaces.
    const m = /^\s*(.*?)\s+(\d+)\/(\d+)\s+[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$/.exec(line);
    if (!m) continue;
    samples++;
    const pid = Number(m[2]);
    const role = pids.get(pid) ?? 'other';
    const sym = m[4].replace(/\+0x[0-9a-f]+$/, '');
    const cat = category(m[5], sym);
    add(ms[role], cat, each);
    add(threads[role], threadKind(pid, Number(m[3]), m[1]), each);
    const key = `${cat}\t${sym === '[unknown]' ? `[unknown] (${m[5]})` : sym}`;
    symbols[role].set(key, (symbols[role].get(key) ?? 0) + each);
  }
  const top = {} as Profile['top'];
  for (const role of ['client', 'server', 'other'] as const) {
    top[role] = [...symbols[role]].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([k, v]) => {
      const [cat, sym] = k.split('\t');
      return [cat, sym, v];
    });
  }
  return { frequency, samples, ms, top, threads };
}

/**
 * The profiles of a row's rounds as one: samples, calls and milliseconds
 * summed (so figures per call are of all rounds, not of the first), and the
 * hottest symbols summed over the rounds' own lists (a symbol outside one
 * round's list counts nothing for that round).
 */
export function mergeProfiles(list: Profile[], topN = 25): Profile | undefined {
  if (list.length === 0) return undefined;
  if (list.some((p) => p.frequency !== list[0].frequency)) throw new Error('profiles taken at different frequencies');
  const ms = perRole();
  const threads = perRole();
  const top = {} as Profile['top'];
  for (const role of ['client', 'server', 'other'] as const) {
    const symbols = new Map<string, [string, string, number]>();
    for (const p of list) {
      for (const [cat, v] of Object.entries(p.ms[role])) add(ms[role], cat, v);
      for (const [kind, v] of Object.entries(p.threads?.[role] ?? {})) add(threads[role], kind, v);
      for (const [cat, sym, v] of p.top[role]) {
        const key = `${cat}\t${sym}`;
        const had = symbols.get(key);
        symbols.set(key, [cat, sym, (had?.[2] ?? 0) + v]);
      }
    }
    top[role] = [...symbols.values()].sort((a, b) => b[2] - a[2]).slice(0, topN);
  }
  const calls = list.every((p) => p.calls !== undefined) ? list.reduce((n, p) => n + p.calls!, 0) : undefined;
  return {
    frequency: list[0].frequency, samples: list.reduce((n, p) => n + p.samples, 0), ...(calls !== undefined ? { calls } : {}), ms, top,
    ...(list.every((p) => p.threads) ? { threads } : {}),
  };
}
