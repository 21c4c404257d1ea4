import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { Client } from '../../lib/client';
import { RX_CALL_TIMEOUT } from '../../lib/constants';
import { Endpoint } from '../../lib/endpoint';
import { kernelSeries } from '../../lib/kernel';
import { bulkCall, freshPort, pingsSent, raiseMaxBacklog, request, restartsPathMtuDiscovery, serve, shortRequestTimeout } from './helpers';

const ADDRESS = '127.0.0.1';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** The names of this process's threads (what ps, top and perf show). */
const threadNames = () => readdirSync('/proc/self/task').map((t) => readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim());

describe('calls through the kernel', () => {
  let client: Endpoint;
  beforeEach(() => {
    client = new Endpoint();
  });
  afterEach(() => client.close());

  test('a small call is answered by the service it was addressed to', async () => {
    const port = freshPort();
    const server = serve(ADDRESS, port, [1234], (req) => Buffer.concat([Buffer.from('echo:'), req]));
    try {
      const { reply } = request(client, { service: 1234, address: ADDRESS, port }, Buffer.from('hello'));
      await expect(reply).resolves.toEqual({ data: Buffer.from('echo:hello'), service: 1234 });
      // The first send went through a starter thread, named for ps and perf.
      expect(threadNames()).toContain('rxrpc-send');
    } finally {
      server.close();
    }
  });

  test('large chunks go on bulk threads: 4 MiB each way arrives intact', async () => {
    const port = freshPort();
    const server = serve(ADDRESS, port, [1235], (req) => Buffer.concat([Buffer.from(sha(req), 'hex'), Buffer.from(req).reverse()]));
    const body = randomBytes(4 * 1024 * 1024);
    try {
      const { data } = await bulkCall('4 MiB each way', () => request(client, { service: 1235, address: ADDRESS, port }, body).reply);
      expect(data.subarray(0, 32).toString('hex')).toBe(sha(body));
      const back = data.subarray(32);
      expect(back.length).toBe(4 * 1024 * 1024);
      expect(back.equals(Buffer.from(body).reverse())).toBe(true);
      // Both the request and the reply went as sleeping sends, and nothing was cut short.
      expect(client.stats.bulkSends).toBeGreaterThan(0);
      expect(server.stats.bulkSends).toBeGreaterThan(0);
      expect(client.stats.partialSends + client.stats.sendAgain).toBe(0);
      expect(threadNames()).toContain('rxrpc-bulk');
    } finally {
      server.close();
    }
  });

  test("a request paused for 450 ms between packets: completes where the kernel keeps the 1 s request timeout, aborted by the server's kernel where it takes 250 jiffies as ms", async () => {
    // Linux 6.12 and 7.x initialise next_req_timo as 1 * HZ and read it as
    // milliseconds: 250 ms with Debian's HZ=250 (1 s on 6.1, where it is
    // jiffies throughout). The fixed module (upgrade-fix.2 and later) has it in ms.
    const shortTimeout = shortRequestTimeout();
    const port = freshPort();
    const server = new Endpoint();
    server.raw.bind({ service: 1240, address: ADDRESS, port });
    server.listen(4);
    let serverSaw: unknown = 'nothing';
    server.on('call', (call) => {
      let bytes = 0;
      call.ondata = (part, end) => {
        bytes += part.length;
        if (!end) return;
        serverSaw = bytes;
        call.write(Buffer.from('ok'), false);
      };
      call.ondone = (err) => {
        if (err) serverSaw = err;
      };
    });
    try {
      // 8 KiB fills whole packets, which go out at once; the rest follows after the pause.
      const call = client.startCall({ service: 1240, address: ADDRESS, port }, Buffer.alloc(8192, 1), true);
      const outcome = new Promise<Error | undefined>((resolve) => {
        call.ondata = () => {};
        call.ondone = resolve;
      });
      // 450 ms: past 250 ms (aborts from 400 ms were measured on 6.12 and 7.3), and far enough
      // below 1 s that a slow guest (6.1 runs with ASan) still sends within it.
      const pause = setTimeout(() => call.isDone || call.write(Buffer.alloc(100, 2), false), 450);
      const err = await outcome;
      clearTimeout(pause);
      for (let i = 0; i < 30 && serverSaw === 'nothing'; i++) await new Promise((r) => setTimeout(r, 100));
      if (shortTimeout) {
        expect(err).toMatchObject({ name: 'RxAbortError', abortCode: RX_CALL_TIMEOUT });
        expect(serverSaw).toMatchObject({ abortCode: RX_CALL_TIMEOUT });
      } else {
        expect(err).toBeUndefined();
        expect(serverSaw).toBe(8292);
      }
    } finally {
      server.close();
    }
  });

  test("a server that reads nothing for 3 s after a request arrived: 6.1's kernel aborts the call (its request timer runs until user space has read the request), 6.12 and 7.x answer it", async () => {
    // 6.1 leaves a server call in SERVER_RECV_REQUEST until recvmsg() has
    // read the request's last packet (rxrpc_end_rx_phase in recvmsg.c), so
    // the 1 s of next_req_timo also runs while the request waits, whole, in
    // the socket; 6.12 and 7.x end the receive phase when that packet arrives.
    const lib = require.resolve('../../lib/index');
    const port = freshPort();
    const child = spawn(process.execPath, ['-e', `
      const { Server } = require(${JSON.stringify(lib)});
      new Server({ address: '127.0.0.1', port: ${port}, services: 1241 }, async (call) => Buffer.concat([Buffer.from('re:'), await call.request()]));
      process.stdin.once('data', () => {
        console.log('stalling');
        for (const end = Date.now() + 3000; Date.now() < end;);
      });
      console.log('ready');
    `], { stdio: ['pipe', 'pipe', 'inherit'] });
    const said = (word: string) => new Promise<void>((resolve) => {
      const seen = (d: Buffer) => d.toString().includes(word) && (child.stdout!.off('data', seen), resolve());
      child.stdout!.on('data', seen);
    });
    const c = new Client();
    try {
      await said('ready');
      const stalling = said('stalling');
      child.stdin!.write('stall\n');
      await stalling;
      // The server's event loop is now busy for 3 s: the request arrives and waits there.
      const outcome = await c.call({ address: ADDRESS, port, service: 1241 }, Buffer.from('x'), { timeout: 15000 })
        .then((r) => r.data.toString(), (err: Error) => err);
      if ((kernelSeries(release()) ?? 0) < 6012) expect(outcome).toMatchObject({ name: 'RxAbortError', abortCode: RX_CALL_TIMEOUT });
      else expect(outcome).toBe('re:x');
    } finally {
      c.close();
      child.kill();
    }
  });

  test('40 calls in a row from one endpoint: PINGs sent per call, about ten where every incoming call restarts the server\'s path-MTU discovery (7.x), under 3 where discovery runs once per peer or not at all', async () => {
    if ((kernelSeries(release()) ?? 0) < 6002) {
      // 6.1 does no path-MTU probing and has no /proc/net/rxrpc/stats to count PINGs in.
      expect(existsSync('/proc/net/rxrpc/stats')).toBe(false);
      return;
    }
    const port = freshPort();
    const server = serve(ADDRESS, port, [1241], () => Buffer.from('ok'));
    const calls = 40;
    try {
      // The first call makes both peer records; count the calls after it.
      await request(client, { service: 1241, address: ADDRESS, port }, Buffer.from('first')).reply;
      const before = pingsSent();
      for (let i = 0; i < calls; i++) {
        await expect(request(client, { service: 1241, address: ADDRESS, port }, Buffer.from('x')).reply).resolves.toMatchObject({ data: Buffer.from('ok') });
      }
      const perCall = (pingsSent() - before) / calls;
      console.log(`PINGs sent per call over ${calls} calls: ${perCall.toFixed(2)}`);
      if (restartsPathMtuDiscovery()) expect(perCall).toBeGreaterThan(5);
      else expect(perCall).toBeLessThan(3);
    } finally {
      server.close();
    }
  });

  test('small chunks: partial sends and EAGAIN, 4 MiB each way arrives intact, without spinning', async () => {
    const port = freshPort();
    const chunk = 16 * 1024;
    const server = new Endpoint();
    server.raw.bind({ service: 1237, address: ADDRESS, port });
    server.listen(8);
    server.on('call', (call) => {
      const parts: Buffer[] = [];
      call.ondata = (part, end) => {
        parts.push(part);
        if (!end) return;
        const req = Buffer.concat(parts);
        const reply = Buffer.concat([Buffer.from(sha(req), 'hex'), Buffer.from(req).reverse()]);
        for (let off = 0; off < reply.length; off += chunk) call.write(reply.subarray(off, off + chunk), off + chunk < reply.length);
      };
    });
    const body = randomBytes(4 * 1024 * 1024);
    const started = Date.now();
    try {
      const call = client.startCall({ service: 1237, address: ADDRESS, port }, body.subarray(0, chunk), true);
      for (let off = chunk; off < body.length; off += chunk) call.write(body.subarray(off, off + chunk), off + chunk < body.length);
      const parts: Buffer[] = [];
      const data = await new Promise<Buffer>((resolve, reject) => {
        call.ondata = (part) => parts.push(part);
        call.ondone = (err) => (err ? reject(err) : resolve(Buffer.concat(parts)));
      });
      const elapsed = Date.now() - started;
      expect(data.subarray(0, 32).toString('hex')).toBe(sha(body));
      expect(data.subarray(32).equals(Buffer.from(body).reverse())).toBe(true);
      // The trap was met: the kernel refused or cut sends at least once on one side.
      const met = client.stats.sendAgain + client.stats.partialSends + server.stats.sendAgain + server.stats.partialSends;
      expect(met).toBeGreaterThan(0);
      expect(client.stats.bulkSends + server.stats.bulkSends).toBe(0);
      // Retries are paced by a timer of 1 ms or more: a spinning sender would
      // retry many times per millisecond.
      expect(client.stats.sendAgain + server.stats.sendAgain).toBeLessThan(elapsed + 200);
    } finally {
      server.close();
    }
  });

  test('1000 calls with 64 in flight to one peer, server in the same process, complete', async () => {
    // The kernel gives one peer at most 16 calls at once (4 connections x 4
    // channels); the rest sleep in their first sendmsg, on the sender thread.
    // The accept pool must cover those 16, which needs max_backlog raised.
    expect(raiseMaxBacklog()).toBe(31);
    const port = freshPort();
    const server = serve(ADDRESS, port, [1236], (req) => req, 31);
    try {
      let next = 0;
      let done = 0;
      const worker = async () => {
        while (next < 1000) {
          const i = next++;
          const body = Buffer.alloc(4);
          body.writeUInt32BE(i);
          const { data } = await request(client, { service: 1236, address: ADDRESS, port }, body).reply;
          expect(data.readUInt32BE(0)).toBe(i);
          done++;
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      expect(done).toBe(1000);
      expect(client.activeCalls).toBe(0);
    } finally {
      server.close();
    }
  });

  test('closing the client with calls in flight settles every call', async () => {
    raiseMaxBacklog();
    const port = freshPort();
    const server = serve(ADDRESS, port, [1237], () => new Promise<Uint8Array>(() => {}), 31); // never answers
    try {
      const replies = Array.from({ length: 16 }, () => request(client, { service: 1237, address: ADDRESS, port }, Buffer.from('x')).reply);
      replies.forEach((r) => r.catch(() => {})); // settled below
      await new Promise((r) => setTimeout(r, 200));
      client.close();
      const settled = await Promise.allSettled(replies);
      expect(settled.every((s) => s.status === 'rejected' && (s.reason as { code?: string }).code === 'ERR_SOCKET_CLOSED')).toBe(true);
    } finally {
      server.close();
    }
  });

  test('closing while the sender thread sleeps in a first sendmsg interrupts it and settles every call', async () => {
    raiseMaxBacklog();
    const port = freshPort();
    const server = serve(ADDRESS, port, [1238], () => new Promise<Uint8Array>(() => {}), 31); // never answers
    try {
      // The peer gets 16 channels; the 17th call's first sendmsg sleeps in the kernel.
      const replies = Array.from({ length: 24 }, () => request(client, { service: 1238, address: ADDRESS, port }, Buffer.from('x')).reply);
      replies.forEach((r) => r.catch(() => {}));
      const native = (client.raw as unknown as { native: { pendingAsync: number } }).native;
      for (let i = 0; i < 100 && native.pendingAsync !== 8; i++) await new Promise((r) => setTimeout(r, 100));
      expect(native.pendingAsync).toBe(8); // 16 calls started, 8 first sends still on the sender thread
      const before = Date.now();
      client.close();
      expect(Date.now() - before).toBeLessThan(5000); // close() interrupted the sleeping sendmsg
      const settled = await Promise.allSettled(replies);
      expect(settled.map((s) => s.status === 'rejected' && (s.reason as { code?: string }).code)).toEqual(new Array(24).fill('ERR_SOCKET_CLOSED'));
      // The process is fine and a new socket works.
      const echoPort = freshPort();
      const echo = serve(ADDRESS, echoPort, [1239], (req) => req);
      const again = new Endpoint();
      try {
        await expect(request(again, { service: 1239, address: ADDRESS, port: echoPort }, Buffer.from('y')).reply).resolves.toMatchObject({ data: Buffer.from('y') });
      } finally {
        again.close();
        echo.close();
      }
    } finally {
      server.close();
    }
  });
});
