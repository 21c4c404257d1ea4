import { Endpoint, BULK_MIN, BULK_SENDS } from '../../lib/endpoint';
import { RX_USER_ABORT } from '../../lib/constants';
import { FakeKernel } from '../fake-kernel';

const A = { address: '10.9.8.7', port: 17003, service: 4101 };

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Resolves with the call's error, if any, once it ends. */
function settle(call: ReturnType<Endpoint['startCall']>): Promise<Error | undefined> {
  return new Promise((resolve) => {
    call.ondone = resolve;
  });
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('Endpoint sends on a fake kernel whose transmit window is small', () => {
  let kernel: FakeKernel;
  let ep: Endpoint;
  let requests: Buffer[];
  beforeEach(() => {
    kernel = new FakeKernel();
    kernel.window = 1000;
    requests = [];
    kernel.peer(A.address, A.port, ({ data }) => {
      requests.push(data);
      return { reply: Buffer.from('ok') };
    });
    ep = new Endpoint({ binding: kernel.binding });
  });
  afterEach(() => ep.close());

  const dataSends = (callId: number) => kernel.sent.filter((s) => s.callId === callId && s.bytes > 0);

  test('a call that starts with a large chunk sends everything on a bulk thread, whole and in order', async () => {
    const part1 = bytes(BULK_MIN + 1000, 1);
    const part2 = bytes(5000, 2);
    const call = ep.startCall(A, part1, true);
    const done = settle(call);
    call.write(part2, true);
    call.write(Buffer.alloc(0), false); // the end, as a stream's end() sends it
    await expect(done).resolves.toBeUndefined();
    expect(requests).toEqual([Buffer.concat([part1, part2])]);
    const sends = kernel.sent.filter((s) => s.callId === call.id);
    expect(sends.map((s) => [s.bytes, s.blocking, s.more])).toEqual([
      [part1.length, true, true], [part2.length, true, true], [0, true, false],
    ]);
    expect(sends[0].target).toEqual(A); // the first send creates the call
    expect(ep.stats.bulkSends).toBe(3);
  });

  test('a call that starts small sends with MSG_DONTWAIT and the retry timer, and never switches', async () => {
    const small = bytes(3000, 3);
    const big = bytes(BULK_MIN * 2, 4);
    const call = ep.startCall(A, Buffer.alloc(0), true);
    const done = settle(call);
    call.write(small, true);
    call.write(big, false);
    await expect(done).resolves.toBeUndefined();
    expect(requests).toEqual([Buffer.concat([small, big])]);
    const sends = dataSends(call.id);
    expect(sends.every((s) => !s.blocking && s.bytes <= 1000)).toBe(true);
    expect(ep.stats.partialSends).toBeGreaterThan(0);
    expect(ep.stats.bulkSends).toBe(0);
  });

  test(`at most ${BULK_SENDS} calls send on bulk threads; the others use the timer and still finish`, async () => {
    kernel.bulkDelay = 20;
    const n = BULK_SENDS + 3;
    const bodies = Array.from({ length: n }, (_, i) => bytes(BULK_MIN + 100 * i, i));
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, kernel.sockets.reduce((k, s) => k + s.bulk.size, 0));
    }, 1);
    const calls = bodies.map((b) => ep.startCall(A, b, false));
    const errors = await Promise.all(calls.map(settle));
    clearInterval(watch);
    expect(errors).toEqual(bodies.map(() => undefined));
    for (const b of bodies) expect(requests).toContainEqual(b);
    expect(most).toBe(BULK_SENDS);
    const bulkCalls = calls.filter((c) => dataSends(c.id).some((s) => s.blocking));
    expect(bulkCalls).toHaveLength(BULK_SENDS);
    // The calls that did not get a bulk thread never used one.
    for (const c of calls.filter((x) => !bulkCalls.includes(x))) expect(dataSends(c.id).some((s) => s.blocking)).toBe(false);
  });

  test('a slot is free again once its call ends', async () => {
    for (let i = 0; i < BULK_SENDS + 2; i++) {
      const call = ep.startCall(A, bytes(BULK_MIN, i), false);
      await expect(settle(call)).resolves.toBeUndefined();
      expect(dataSends(call.id)[0].blocking).toBe(true);
    }
  });

  test('aborting a call during a bulk send interrupts the send first, then aborts it in the kernel', async () => {
    const call = ep.startCall(A, bytes(BULK_MIN, 9), true);
    const done = settle(call);
    await tick(20); // the first send completes
    kernel.bulkDelay = 10000;
    kernel.interruptTakes = 100;
    call.write(bytes(BULK_MIN, 4), false);
    expect(kernel.sockets[0].bulk.size).toBe(1);
    call.abort();
    const err = await done;
    expect(err).toMatchObject({ name: 'RxAbortError', abortCode: RX_USER_ABORT, local: true });
    const interrupt = kernel.log.findIndex((l) => l.startsWith('interrupt'));
    const abort = kernel.log.findIndex((l) => l.includes(`abort ${RX_USER_ABORT}`));
    expect(interrupt).toBeGreaterThanOrEqual(0);
    expect(abort).toBeGreaterThan(interrupt);
    expect(requests).toEqual([]);
    expect(call.sendMode).toBe('bulk');
    await tick(10); // the interrupted send's completion changes nothing
    expect(ep.activeCalls).toBe(0);
  });

  test('an interrupted bulk send that took part keeps the rest queued; drained() waits for it', async () => {
    const head = bytes(BULK_MIN, 6);
    const body = bytes(BULK_MIN + 5000, 5);
    const call = ep.startCall(A, head, true);
    const done = settle(call);
    await tick(20);
    kernel.bulkDelay = 10000;
    kernel.interruptTakes = 700;
    call.write(body, false);
    expect(call.queuedBytes).toBe(body.length);
    const token = [...kernel.sockets[0].bulk.keys()][0];
    kernel.bulkDelay = 5;
    kernel.sockets[0].interrupt(token); // as close() does to every thread
    await call.drained();
    expect(call.queuedBytes).toBe(0);
    await expect(done).resolves.toBeUndefined();
    expect(requests).toEqual([Buffer.concat([head, body])]);
    expect(dataSends(call.id).map((s) => s.bytes)).toEqual([head.length, 700, body.length - 700]);
  });

  test('closing the endpoint during a bulk send fails the call with ERR_SOCKET_CLOSED', async () => {
    kernel.bulkDelay = 10000;
    const call = ep.startCall(A, bytes(BULK_MIN, 6), false);
    const done = settle(call);
    await tick();
    ep.close();
    await expect(done).resolves.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
  });
});
