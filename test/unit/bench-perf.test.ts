// The benchmark's perf profile split (scripts/bench/perf.ts): which process
// and what kind of code each sample of `perf script` belongs to.
import { category, mergeProfiles, Profile, tally } from '../../scripts/bench/perf';
import { formatProfiles } from '../../scripts/bench/report';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { irqCpu, kernelCpuSince, kernelThreadsCpu } from '../../scripts/bench/suite';
import type { Report } from '../../scripts/bench/suite';

describe('bench perf: category', () => {
  test.each([
    ['[kernel.kallsyms]', 'finish_task_switch.isra.0', 'kernel'],
    ['/lib/modules/6.1.0-57-amd64/kernel/net/rxrpc/rxrpc.ko', 'rxrpc_recvmsg', 'kernel'],
    ['/work/main/build/Release/rxrpc.node', '(anonymous namespace)::WorkerMain', 'addon'],
    ['/tmp/perf-152.map', 'JS:*onMessage /work/main/build/lib/endpoint.js:540', 'JS: library'],
    ['/tmp/perf-152.map', 'JS:*emit node:events:514', 'JS: Node'],
    ['/tmp/perf-152.map', 'JS:*start /work/main/build/scripts/bench/node-client.js:200', 'JS: benchmark'],
    ['/usr/local/bin/node', 'Builtins_LoadIC', 'V8 builtins'],
    ['/usr/local/bin/node', 'Builtins_LdaNamedPropertyHandler', 'V8 interpreter'],
    ['/usr/local/bin/node', 'v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>', 'V8 GC and heap'],
    ['/usr/local/bin/node', 'v8::internal::compiler::GraphReducer::ReduceTop', 'V8 runtime'],
    ['/usr/local/bin/node', 'v8::internal::(anonymous namespace)::IterateObjectCache', 'V8 GC and heap'],
    ['/usr/local/bin/node', 'uv__io_poll', 'libuv'],
    ['/usr/local/bin/node', 'napi_make_callback', 'Node and N-API'],
    ['/usr/lib/x86_64-linux-gnu/libc.so.6', '__memcmp_avx2_movbe', 'libc'],
    ['/work/main/build/bench/rxbench', 'main', 'rxbench'],
    ['[unknown]', '[unknown]', 'unknown'],
  ])('%s %s -> %s', (dso, sym, want) => {
    expect(category(dso, sym)).toBe(want);
  });
});

describe('bench perf: tally', () => {
  const script = [
    '      rxrpc-send   145/149  ffffffff810dcff6 finish_task_switch.isra.0 ([kernel.kallsyms])',
    '            node   145/145  55d0c0a1b2c3 Builtins_LoadIC (/usr/local/bin/node)',
    '            node   145/145  7f1ceb025ccb JS:*onMessage /work/main/build/lib/endpoint.js:540 (/tmp/perf-145.map)',
    '            node   152/156  7f1ceb025ccb Builtins_LoadIC+0x12 (/usr/local/bin/node)',
    '         swapper     0/0    ffffffff81a592eb native_safe_halt ([kernel.kallsyms])',
    'not a sample line',
    '',
  ].join('\n');

  test('splits samples by role and category, in ms of CPU at the sampling frequency', () => {
    const p = tally(script, new Map([[145, 'client'], [152, 'server']]), 1000);
    expect(p.samples).toBe(5);
    expect(p.ms.client).toEqual({ kernel: 1, 'V8 builtins': 1, 'JS: library': 1 });
    expect(p.ms.server).toEqual({ 'V8 builtins': 1 });
    expect(p.ms.other).toEqual({ kernel: 1 });
  });

  test('splits each process by thread: the first (main), the addon\'s named ones, the rest', () => {
    const p = tally(`${script}\n V8 DefaultWorke   145/147  55d0c0a1b2c4 v8::internal::Scavenger::Process (/usr/local/bin/node)`,
      new Map([[145, 'client'], [152, 'server']]), 1000);
    expect(p.threads).toEqual({
      client: { 'rxrpc-send': 1, main: 2, 'other threads': 1 },
      server: { 'other threads': 1 },
      other: { main: 1 },
    });
    // A thread name with a space still parses: its sample is counted, under GC.
    expect(p.samples).toBe(6);
    expect(p.ms.client['V8 GC and heap']).toBe(1);
  });

  test('symbols are counted without their offset, hottest first', () => {
    const p = tally(`${script}\n node 152/152  1 Builtins_LoadIC+0x40 (/usr/local/bin/node)\n node 152/152  2 uv__io_poll (/usr/local/bin/node)`,
      new Map([[152, 'server']]), 500);
    expect(p.top.server[0]).toEqual(['V8 builtins', 'Builtins_LoadIC', 4]);
    expect(p.top.server[1]).toEqual(['libuv', 'uv__io_poll', 2]);
  });
});

describe('bench perf: mergeProfiles', () => {
  // A round as summarize() makes it: its hottest symbols sorted, most first.
  const round = (calls: number, kernelMs: number, loadIcMs: number): Profile => ({
    frequency: 1000, samples: kernelMs + loadIcMs, calls,
    ms: { client: { kernel: kernelMs, 'V8 builtins': loadIcMs }, server: {}, other: { kernel: 1 } },
    top: {
      client: ([['kernel', 'finish_task_switch', kernelMs], ['V8 builtins', 'Builtins_LoadIC', loadIcMs]] as Array<[string, string, number]>)
        .sort((a, b) => b[2] - a[2]),
      server: [],
      other: [],
    },
  });

  test('sums samples, calls, milliseconds and the hottest symbols of every round', () => {
    const p = mergeProfiles([round(100, 30, 50), round(300, 40, 5)])!;
    expect(p.samples).toBe(125);
    expect(p.calls).toBe(400);
    expect(p.ms.client).toEqual({ kernel: 70, 'V8 builtins': 55 });
    expect(p.ms.other).toEqual({ kernel: 2 });
    // Re-sorted by the sum: the kernel symbol leads over both rounds though LoadIC led the first.
    expect(p.top.client).toEqual([['kernel', 'finish_task_switch', 70], ['V8 builtins', 'Builtins_LoadIC', 55]]);
  });

  test('a symbol of one round only counts there; the merged list keeps the topN hottest', () => {
    const a = round(10, 5, 1);
    const b: Profile = { ...round(10, 2, 1), top: { client: [['libc', 'memcmp', 9], ['kernel', 'finish_task_switch', 2]], server: [], other: [] } };
    expect(mergeProfiles([a, b], 2)!.top.client).toEqual([['libc', 'memcmp', 9], ['kernel', 'finish_task_switch', 7]]);
    expect(mergeProfiles([a, b])!.top.client).toEqual([['libc', 'memcmp', 9], ['kernel', 'finish_task_switch', 7], ['V8 builtins', 'Builtins_LoadIC', 1]]);
  });

  test('one round is itself; none is undefined; calls only when every round counted them', () => {
    expect(mergeProfiles([round(10, 2, 1)])).toEqual(round(10, 2, 1));
    expect(mergeProfiles([])).toBeUndefined();
    const { calls: _, ...uncounted } = round(10, 1, 2);
    expect(mergeProfiles([uncounted, round(10, 1, 2)])!.calls).toBeUndefined();
  });

  test('threads are summed where every round has them, and left out where one has none', () => {
    const a = { ...round(10, 2, 1), threads: { client: { main: 2, 'rxrpc-send': 1 }, server: {}, other: {} } };
    const b = { ...round(10, 2, 1), threads: { client: { main: 3 }, server: { main: 1 }, other: {} } };
    expect(mergeProfiles([a, b])!.threads).toEqual({ client: { main: 5, 'rxrpc-send': 1 }, server: { main: 1 }, other: {} });
    expect(mergeProfiles([a, round(10, 2, 1)])!.threads).toBeUndefined();
  });

  test('refuses rounds sampled at different frequencies', () => {
    expect(() => mergeProfiles([round(10, 1, 2), { ...round(10, 1, 2), frequency: 99 }])).toThrow(/different frequencies/);
  });
});

describe('bench report: formatProfiles', () => {
  test('prints CPU per call by category and by thread for each profiled row', () => {
    const profile: Profile = {
      frequency: 1000, samples: 6, calls: 2,
      ms: { client: { kernel: 2, addon: 1 }, server: { kernel: 3 }, other: {} },
      top: { client: [['kernel', 'finish_task_switch', 2], ['addon', 'WorkerMain', 1]], server: [['kernel', 'rxrpc_recvmsg', 3]], other: [] },
      threads: { client: { main: 2, 'rxrpc-send': 1 }, server: { main: 3 }, other: {} },
    };
    const report = { rows: [{ client: 'api', server: 'c', workload: 'small-64', figures: { calls: 2, errors: 0, profile } }] } as unknown as Report;
    const lines = formatProfiles(report);
    const row = (label: string) => lines.find((l) => l.startsWith(label))?.slice(18).trim().split(/\s+/);
    // Milliseconds of samples per call, in microseconds: 2 ms over 2 calls is 1000 us.
    expect(row('kernel')).toEqual(['1000', '1500']);
    expect(row('addon')).toEqual(['500', '-']);
    expect(row('total')).toEqual(['1500', '1500']);
    expect(row('thread: main')).toEqual(['1000', '1500']);
    expect(row('thread: rxrpc-send')).toEqual(['500', '-']);
    expect(lines.some((l) => l.startsWith('thread: rxrpc-bulk'))).toBe(false);
    // The C server's symbols are not listed under a Node client's row.
    expect(lines.filter((l) => l.startsWith('hottest in the'))).toEqual(['hottest in the client process, small, 64 in flight, api/C (us per call):']);
  });
});

describe('bench: CPU of the kernel\'s threads and of interrupts (suite.ts)', () => {
  // A /proc with two rxrpc I/O threads, a kworker, a user process (not a child
  // of kthreadd) and a thread that vanished between readdir and read.
  const fakeProc = (entries: Array<[pid: number, comm: string, ppid: number, ns: number]>, stat = 'cpu  1 2 3 4 5 60 140 0 0 0\n') => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-proc-'));
    for (const [pid, comm, ppid, ns] of entries) {
      mkdirSync(join(dir, String(pid)));
      writeFileSync(join(dir, String(pid), 'stat'), `${pid} (${comm}) S ${ppid} 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 0\n`);
      writeFileSync(join(dir, String(pid), 'schedstat'), `${ns} 100 7\n`);
    }
    mkdirSync(join(dir, '999'));
    writeFileSync(join(dir, 'stat'), stat);
    return dir;
  };

  test('sums schedstat run time of kthreadd\'s children by name without the number; a process of its own and a vanished task are left out', () => {
    const dir = fakeProc([[144, 'krxrpcio/18400', 2, 1.5e9], [152, 'krxrpcio/0', 2, 0.25e9], [11, 'kworker/0:1-events', 2, 2e8],
      [16, 'rcu_preempt', 2, 1e7], [300, 'rxbench', 1, 9e9], [301, 'weird) name (x', 2, 1e9]]);
    try {
      expect(kernelThreadsCpu(dir)).toEqual({ krxrpcio: 1.75, kworker: 0.2, rcu_preempt: 0.01, 'weird) name (x': 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('what ran between two readings: differences, new threads whole, idle ones dropped', () => {
    expect(kernelCpuSince({ krxrpcio: 1, kworker: 0.5, rcu_preempt: 0.1 }, { krxrpcio: 1.6, kworker: 0.5, rcu_preempt: 0.2, ksoftirqd: 0.05 }))
      .toEqual({ krxrpcio: expect.closeTo(0.6), rcu_preempt: expect.closeTo(0.1), ksoftirqd: 0.05 });
  });

  test('interrupt time is irq + softirq of the first line of /proc/stat, in USER_HZ ticks', () => {
    const dir = fakeProc([]);
    try {
      expect(irqCpu(join(dir, 'stat'))).toBeCloseTo(2.0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
