/**
 * The library's JavaScript paths on the host, against the fake kernel
 * (test/fake-kernel.ts with `immediate`): small calls through Client or an
 * Endpoint, or served by Server or an Endpoint, with V8's CPU profiler.
 *
 *   node --cpu-prof --cpu-prof-dir=DIR build/scripts/bench/profile.js api|binding|server|endpoint-server [CALLS] [IN_FLIGHT]
 *   node build/scripts/bench/profile.js --heap KIND [CALLS] [IN_FLIGHT]
 *   node build/scripts/bench/profile.js --summary FILE.cpuprofile [ROWS] [FROM_MS]
 *
 * It prints calls/s; with --heap, the bytes allocated per call on the V8 heap
 * (V8's sampling heap profiler, collected objects included) and the
 * functions that allocate them; with --summary, the functions that took the
 * most self time and the share of each file.
 */
import { Session } from 'node:inspector';
import { readFileSync } from 'node:fs';
import { Client } from '../../lib/client';
import { RXRPC_ACK, RXRPC_USER_CALL_ID, MSG_EOR } from '../../lib/constants';
import { encodeSockaddr } from '../../lib/codec';
import { Endpoint } from '../../lib/endpoint';
import { Server } from '../../lib/server';
import { cmsg, FakeKernel, FakeSocket } from '../../test/fake-kernel';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time by function and by file, as shares of all samples taken from
 * `fromMs` after the profile started (to leave start-up out).
 */
export function summarize(profile: CpuProfile, rows = 40, fromMs = 0): string {
  const time = new Map<number, number>();
  let at = 0;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at >= fromMs * 1000) time.set(id, (time.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const t = time.get(node.id) ?? 0;
    total += t;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.split('/').slice(-2).join('/') || `(${functionName || 'native'})`;
    const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + t);
    byFile.set(file, (byFile.get(file) ?? 0) + t);
  }
  const top = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
  return [...top(byFunction, rows), '--- by file', ...top(byFile, 20)].join('\n');
}

const REPLY = Buffer.from([0, 0, 0, 0]);
const REQUEST = Buffer.from([0, 0, 0, 4]);
const PEER = { address: '127.0.0.1', port: 7100 };

type Starter = (done: (err?: Error) => void) => void;

function clientStarter(kind: 'api' | 'binding', kernel: FakeKernel, inflight: number): Starter {
  kernel.peer(PEER.address, PEER.port, () => ({ reply: REPLY }));
  if (kind === 'api') {
    const client = new Client({ binding: kernel.binding, maxCallsPerPeer: inflight });
    return (done) => void client.call({ ...PEER, service: 1 }, REQUEST).then(() => done(), done);
  }
  const endpoint = new Endpoint({ binding: kernel.binding });
  return (done) => {
    const call = endpoint.startCall({ ...PEER, service: 1 }, REQUEST, false);
    call.ondone = (err) => done(err);
  };
}

/** A peer calling a listening socket: each call's request arrives whole; its reply is acknowledged at once. */
function serverStarter(kind: 'server' | 'endpoint-server', kernel: FakeKernel): Starter {
  const charged: number[] = [];
  let socket: FakeSocket | undefined;
  const waiting = new Map<number, (err?: Error) => void>();
  const id = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const name = encodeSockaddr({ service: 1, address: '10.0.0.9', port: 7001 });
  // Every sendmsg of the server passes here: charges fill the pool, replies are acknowledged.
  const send = kernel.send.bind(kernel);
  kernel.send = (s, n, control, data, flags, blocking) => {
    const result = send(s, n, control, data, flags, blocking);
    socket = s;
    const callId = kernel.callIdOf(control);
    const ack = waiting.get(callId);
    if (ack && data) {
      waiting.delete(callId);
      setImmediate(() => {
        s.deliver(Buffer.alloc(0), MSG_EOR, name, Buffer.concat([cmsg(RXRPC_USER_CALL_ID, id(callId)), cmsg(RXRPC_ACK)]));
        ack();
      });
    } else if (!data) {
      charged.push(callId);
    }
    kernel.sent.length = 0;
    kernel.log.length = 0;
    return result;
  };
  if (kind === 'server') {
    const server = new Server({ address: '127.0.0.1', port: 7100, services: [1], backlog: 10, binding: kernel.binding }, async (call) => {
      await call.request();
      return REPLY;
    });
    server.on('error', () => {});
  } else {
    const endpoint = new Endpoint({ binding: kernel.binding });
    endpoint.raw.bind({ service: 1, address: '127.0.0.1', port: 7100 });
    endpoint.listen(10);
    endpoint.on('call', (call) => {
      call.ondata = (_chunk, end) => {
        if (end) call.write(REPLY, false);
      };
    });
  }
  return (done) => {
    const callId = charged.shift();
    if (callId === undefined || !socket) {
      setImmediate(() => done(new Error('the accept pool is empty')));
      return;
    }
    waiting.set(callId, done);
    const s = socket;
    setImmediate(() => kernel.callServer(s, callId, REQUEST, 1));
  };
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/**
 * Bytes allocated by function (self), from a sampling heap profile, and by
 * the nearest frame of the project's own code (lib/, test/, bench/) on the
 * allocation's stack: what Node's builtins allocate on the library's behalf
 * counts as the library's, and the fake kernel's and this script's share can
 * be told apart from it.
 */
function heapSummary(head: HeapNode, calls: number, rows = 25): string {
  const by = new Map<string, number>();
  const byOwner = new Map<string, number>();
  const owners = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, owner: string | undefined) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.split('/').slice(-2).join('/');
    const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    // The fake kernel encodes and decodes addresses with the library's codec: that is its own cost.
    const fakeKernelCodec = owner !== undefined && owner.includes(' test/') && url.endsWith('/lib/codec.js');
    const own = !fakeKernelCodec && /\/(lib|lib\/security|test|bench)\/[^/]*\.js$/.test(url) ? key : owner;
    by.set(key, (by.get(key) ?? 0) + n.selfSize);
    const area = own === undefined ? '(no project frame)' : own.includes(' lib/') || own.includes(' security/') ? 'lib'
      : own.includes(' test/') ? 'test (fake kernel)' : 'bench';
    owners.set(area, (owners.get(area) ?? 0) + n.selfSize);
    if (own !== undefined && area === 'lib') byOwner.set(own, (byOwner.get(own) ?? 0) + n.selfSize);
    total += n.selfSize;
    for (const c of n.children) walk(c, own);
  };
  walk(head, undefined);
  const table = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, t]) => `${(t / calls).toFixed(0).padStart(6)} B/call  ${k}`);
  return [`${(total / calls).toFixed(0)} bytes allocated per call (sampled)`, ...table(by, rows),
    '--- by whose code asked for it', ...table(owners, 4),
    '--- the library\'s, by its nearest frame', ...table(byOwner, rows)].join('\n');
}

function run(kind: string, calls: number, inflight: number, heap = false): void {
  const session = heap ? new Session() : undefined;
  session?.connect();
  const kernel = new FakeKernel();
  kernel.immediate = true;
  const start = kind === 'api' || kind === 'binding' ? clientStarter(kind, kernel, inflight)
    : serverStarter(kind as 'server' | 'endpoint-server', kernel);
  let started = 0;
  let ended = 0;
  const warm = Math.min(10000, calls / 10);
  let t0 = 0n;
  const next = () => {
    started++;
    start((err) => {
      if (err) {
        console.error(err);
        process.exit(1);
      }
      ended++;
      kernel.sent.length = 0;
      kernel.log.length = 0;
      if (ended === warm) {
        t0 = process.hrtime.bigint();
        session?.post('HeapProfiler.startSampling', {
          samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
        } as object);
      }
      if (started < calls) next();
      else if (ended === calls) {
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        const n = calls - warm;
        console.log(`${kind}: ${n} calls, ${inflight} in flight: ${(n / s).toFixed(0)} calls/s, ` +
          `rss ${(process.memoryUsage().rss / 1e6).toFixed(1)} MB`);
        if (!session) process.exit(0);
        session.post('HeapProfiler.stopSampling', (err, result) => {
          if (err) throw err;
          console.log(heapSummary((result as unknown as { profile: { head: HeapNode } }).profile.head, n));
          process.exit(0);
        });
      }
    });
  };
  for (let i = 0; i < inflight; i++) next();
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--summary') {
    console.log(summarize(JSON.parse(readFileSync(argv[1], 'utf8')) as CpuProfile, Number(argv[2] ?? 40), Number(argv[3] ?? 0)));
  } else {
    const heap = argv[0] === '--heap';
    if (heap) argv.shift();
    const kind = argv[0] ?? 'api';
    if (!['api', 'binding', 'server', 'endpoint-server'].includes(kind)) throw new Error(`unknown kind ${kind}`);
    run(kind, Number(argv[1] ?? 200000), Number(argv[2] ?? 64), heap);
  }
}
