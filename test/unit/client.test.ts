import { Client } from '../../lib/client';
import { RX_CALL_DEAD, RX_CALL_TIMEOUT, RX_PROTOCOL_ERROR, RX_USER_ABORT, RXGEN_OPCODE } from '../../lib/constants';
import { FakeKernel } from '../fake-kernel';

const A = { address: '10.9.8.7', port: 17003 };
const B = { address: '10.9.8.6', port: 17003 };
const req = Buffer.from([0, 1, 0, 1]);

function upgrading(from: number, to: number) {
  return ({ service, upgrade }: { service: number; upgrade: boolean }) =>
    ({ reply: Buffer.from(`hello from ${upgrade && service === from ? to : service}`), service: upgrade && service === from ? to : service, delay: 20 });
}

describe('Client on a fake kernel', () => {
  let kernel: FakeKernel;
  let client: Client;
  beforeEach(() => {
    kernel = new FakeKernel();
    client = new Client({ binding: kernel.binding });
  });
  afterEach(() => client.close());

  test('a call resolves with the reply, the service that answered and the peer', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('pong') }));
    await expect(client.call({ ...A, service: 52 }, Buffer.from('ping'))).resolves.toEqual({
      data: Buffer.from('pong'), service: 52, peer: A,
    });
    expect(kernel.requests.map((r) => r.target)).toEqual([{ ...A, service: 52 }]);
  });

  test('a reply from another service is an error, not a success', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('x'), service: 2503 }));
    await expect(client.call({ ...A, service: 52 }, req)).rejects.toMatchObject({
      code: 'ERR_RXRPC_WRONG_SERVICE', expected: 52, received: 2503,
    });
  });

  test('rule 1: the probe carries the upgrade flag on a call of its own connection', async () => {
    kernel.peer(A.address, A.port, upgrading(52, 2503));
    await client.probe(A, { service: 52, upgradeTo: 2503, request: req });
    const [probe] = kernel.requests;
    expect(probe).toMatchObject({ upgrade: true, exclusive: true, target: { ...A, service: 52 } });
  });

  test('rule 3: an upgrading server answers from the new service, and later calls use it', async () => {
    kernel.peer(A.address, A.port, upgrading(52, 2503));
    const result = await client.probe(A, { service: 52, upgradeTo: 2503, request: req });
    expect(result).toMatchObject({ service: 2503, upgraded: true, reply: Buffer.from('hello from 2503') });
    const later = await client.call({ ...A, service: 52 }, req);
    expect(later.service).toBe(2503);
    const [probe, call] = kernel.requests;
    expect(call).toMatchObject({ upgrade: false, target: { ...A, service: 2503 } });
    // The learned service goes out through a local endpoint of its own.
    expect(call.socket).not.toBe(probe.socket);
  });

  test('rule 2: a server that cannot upgrade answers from the original service', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('old') }));
    await expect(client.probe(A, { service: 52, upgradeTo: 2503, request: req })).resolves.toMatchObject({
      service: 52, upgraded: false,
    });
    expect((await client.call({ ...A, service: 52 }, req)).service).toBe(52);
  });

  test('rule 4: the probe sends the same request bytes the caller gave', async () => {
    let seen: Buffer | undefined;
    kernel.peer(A.address, A.port, (r) => {
      seen = r.data;
      return { reply: Buffer.alloc(4) };
    });
    await client.probe(A, { service: 52, request: req });
    expect(seen).toEqual(req);
  });

  test('rule 5: calls issued during a probe wait for it; other destinations do not', async () => {
    kernel.peer(A.address, A.port, (r) => ({ ...upgrading(52, 2503)(r), delay: r.upgrade ? 60 : 0 }));
    kernel.peer(B.address, B.port, () => ({ reply: Buffer.from('b') }));
    const probe = client.probe(A, { service: 52, upgradeTo: 2503, request: req });
    const calls = [1, 2, 3].map(() => client.call({ ...A, service: 52 }, req));
    const other = client.call({ ...B, service: 52 }, req);
    await other;
    expect(kernel.requests.filter((r) => r.target!.address === A.address)).toHaveLength(1); // only the probe
    await probe;
    const results = await Promise.all(calls);
    expect(results.map((r) => r.service)).toEqual([2503, 2503, 2503]);
    const answered = kernel.log.findIndex((l) => l.startsWith('answer call') && l.includes(`/${kernel.requests[0].callId}`));
    const firstCallToA = kernel.log.findIndex((l, i) => i > 0 && l.startsWith(`send ${A.address}`) && !l.includes('upgrade'));
    expect(answered).toBeGreaterThan(-1);
    expect(firstCallToA).toBeGreaterThan(answered);
  });

  test('a probe aborted as an unknown operation means "no upgrade"', async () => {
    kernel.peer(A.address, A.port, () => ({ abort: RXGEN_OPCODE }));
    await expect(client.probe(A, { service: 52, request: req })).resolves.toMatchObject({
      service: 52, upgraded: false, fallback: 'not-supported', abortCode: RXGEN_OPCODE,
    });
    expect(client.learnedService(A, 52)).toMatchObject({ service: 52, fallback: 'not-supported' });
  });

  test('a probe broken by RX_PROTOCOL_ERROR falls back to the original service and says so', async () => {
    kernel.peer(A.address, A.port, (r) => (r.upgrade ? { abort: RX_PROTOCOL_ERROR } : { reply: Buffer.from('ok') }));
    const result = await client.probe(A, { service: 52, upgradeTo: 2503, request: req });
    expect(result).toMatchObject({ service: 52, upgraded: false, fallback: 'protocol-error' });
    expect(result.summary).toMatch(/RX_PROTOCOL_ERROR/);
    expect((await client.call({ ...A, service: 52 }, req)).service).toBe(52);
  });

  test('a probe whose first sendmsg reports ECONNABORTED is judged by the abort code that follows', async () => {
    // Under load the server's abort can complete the call before the first
    // sendmsg returns; the kernel then reports ECONNABORTED and delivers the
    // terminal ABORT afterwards.
    kernel.peer(A.address, A.port, upgrading(52, 2503));
    kernel.failStart = { code: 'ECONNABORTED', errno: 103, abort: RX_PROTOCOL_ERROR };
    const result = await client.probe(A, { service: 52, upgradeTo: 2503, request: req });
    expect(result).toMatchObject({ service: 52, upgraded: false, fallback: 'protocol-error', abortCode: RX_PROTOCOL_ERROR });
    // It was not aborted a second time from this side.
    expect(kernel.sent.filter((s) => s.abort !== undefined)).toEqual([]);
  });

  test('a call whose first sendmsg reports ECONNABORTED rejects with the abort code that follows', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('x') }));
    kernel.failStart = { code: 'ECONNABORTED', errno: 103, abort: RXGEN_OPCODE };
    await expect(client.call({ ...A, service: 52 }, req)).rejects.toMatchObject({ name: 'RxAbortError', abortCode: RXGEN_OPCODE });
  });

  test('a call whose sendmsg reports ESHUTDOWN (already ended in the kernel) rejects with the abort code that follows', async () => {
    // Seen across two kernels: a server resets a call whose request paused
    // for a second (RX_CALL_DEAD); the client's next sendmsg finds the call
    // complete (ESHUTDOWN) before its terminal ABORT has been read.
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('x') }));
    kernel.failStart = { code: 'ESHUTDOWN', errno: 108, abort: RX_CALL_DEAD };
    await expect(client.call({ ...A, service: 52 }, req)).rejects.toMatchObject({ name: 'RxAbortError', abortCode: RX_CALL_DEAD });
    expect(kernel.sent.filter((s) => s.abort !== undefined)).toEqual([]);
  });

  test('a first sendmsg that fails otherwise rejects with the errno at once', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('x') }));
    kernel.failStart = { code: 'ECONNREFUSED', errno: 111 };
    await expect(client.call({ ...A, service: 52 }, req)).rejects.toMatchObject({ code: 'ECONNREFUSED', syscall: 'sendmsg' });
  });

  test('a probe that fails otherwise rejects, learns nothing, and releases waiting calls', async () => {
    kernel.peer(A.address, A.port, (r) => (r.upgrade ? { abort: RX_CALL_DEAD, delay: 20 } : { reply: Buffer.from('ok') }));
    const probe = client.probe(A, { service: 52, request: req });
    const waiting = client.call({ ...A, service: 52 }, req);
    await expect(probe).rejects.toMatchObject({ code: 'ERR_RX_ABORT', abortCode: RX_CALL_DEAD, abortName: 'RX_CALL_DEAD' });
    expect(client.learnedService(A, 52)).toBeUndefined();
    await expect(waiting).resolves.toMatchObject({ service: 52 });
  });

  test('forget() drops what a probe learned', async () => {
    kernel.peer(A.address, A.port, upgrading(52, 2503));
    await client.probe(A, { service: 52, upgradeTo: 2503, request: req });
    client.forget(A);
    expect(client.learnedService(A, 52)).toBeUndefined();
    await expect(client.call({ ...A, service: 52 }, req)).resolves.toMatchObject({ service: 52 });
  });

  test('a probe answered by an unexpected service is an error', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('?'), service: 777 }));
    await expect(client.probe(A, { service: 52, upgradeTo: 2503, request: req })).rejects.toMatchObject({
      code: 'ERR_RXRPC_WRONG_SERVICE', received: 777,
    });
  });

  test('a timeout rejects with TimeoutError and aborts the call on the wire', async () => {
    kernel.peer(A.address, A.port, () => ({ silent: true }));
    await expect(client.call({ ...A, service: 1 }, req, { timeout: 30 })).rejects.toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT' });
    expect(kernel.sent.filter((s) => s.abort !== undefined).map((s) => s.abort)).toEqual([RX_CALL_TIMEOUT]);
  });

  test('a deadline in the past fails the call before anything is sent', async () => {
    await expect(client.call({ ...A, service: 1 }, req, { deadline: Date.now() - 1 })).rejects.toMatchObject({ name: 'TimeoutError' });
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.requests).toHaveLength(0);
  });

  test('an AbortSignal aborts the call with RX_USER_ABORT and rejects with AbortError', async () => {
    kernel.peer(A.address, A.port, () => ({ silent: true }));
    const ac = new AbortController();
    const p = client.call({ ...A, service: 1 }, req, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user gave up')), 20);
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: expect.objectContaining({ message: 'user gave up' }) });
    expect(kernel.sent.filter((s) => s.abort !== undefined).map((s) => s.abort)).toEqual([RX_USER_ABORT]);
  });

  test('an already aborted signal sends nothing', async () => {
    await expect(client.call({ ...A, service: 1 }, req, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.requests).toHaveLength(0);
  });

  test('a call waiting behind a probe can time out without being sent', async () => {
    kernel.peer(A.address, A.port, (r) => ({ reply: Buffer.from('ok'), delay: r.upgrade ? 80 : 0 }));
    const probe = client.probe(A, { service: 52, request: req });
    await expect(client.call({ ...A, service: 52 }, req, { timeout: 20 })).rejects.toMatchObject({ name: 'TimeoutError' });
    await probe;
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.requests).toHaveLength(1);
  });

  test('no more than maxCallsPerPeer calls run at once; the rest wait in order', async () => {
    const limited = new Client({ binding: kernel.binding, maxCallsPerPeer: 2 });
    let running = 0;
    let most = 0;
    const order: number[] = [];
    kernel.peer(A.address, A.port, (r) => {
      running++;
      most = Math.max(most, running);
      order.push(r.data[0]);
      setTimeout(() => running--, 15);
      return { reply: r.data, delay: 15 };
    });
    try {
      const all = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => limited.call({ ...A, service: 1 }, Buffer.from([i]))));
      expect(all.map((r) => r.data[0])).toEqual([0, 1, 2, 3, 4, 5]);
      expect(most).toBe(2);
      expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    } finally {
      limited.close();
    }
  });

  test('idle destinations keep their slots up to a bound, are swept beyond it, and the per-peer limit holds throughout', async () => {
    const limited = new Client({ binding: kernel.binding, maxCallsPerPeer: 1 });
    const slotsOf = () => (limited as unknown as { slots: Map<string, unknown> }).slots;
    const peers = Array.from({ length: 300 }, (_, i) => ({ address: `10.7.${i >> 8}.${i & 255}`, port: 17003 }));
    let running = 0;
    let most = 0;
    for (const p of [A, ...peers]) {
      kernel.peer(p.address, p.port, (r) => {
        running++;
        most = Math.max(most, running);
        setTimeout(() => running--, 2);
        return { reply: r.data, delay: 2 };
      });
    }
    try {
      // one call after another to A: its idle slots stay (no add and delete per call)
      for (let i = 0; i < 5; i++) await limited.call({ ...A, service: 1 }, req);
      const kept = slotsOf().get([...slotsOf().keys()][0]);
      expect(slotsOf().size).toBe(1);
      for (let i = 0; i < 5; i++) await limited.call({ ...A, service: 1 }, req);
      expect(slotsOf().get([...slotsOf().keys()][0])).toBe(kept);
      // 300 more destinations, three calls at a time to A interleaved: the map stays bounded
      let largest = 0;
      for (const p of peers) {
        await Promise.all([limited.call({ ...p, service: 1 }, req), limited.call({ ...A, service: 1 }, req), limited.call({ ...A, service: 1 }, req)]);
        largest = Math.max(largest, slotsOf().size);
      }
      expect(largest).toBeLessThanOrEqual(2 * 64 + 1);
      expect(most).toBe(2); // A's one call and the other destination's, never two to A
      expect(kernel.requests).toHaveLength(10 + 3 * peers.length);
    } finally {
      limited.close();
    }
  });

  test('closing settles every call: running, waiting for a slot, and waiting behind a probe', async () => {
    const limited = new Client({ binding: kernel.binding, maxCallsPerPeer: 1 });
    kernel.peer(A.address, A.port, () => ({ silent: true }));
    kernel.peer(B.address, B.port, () => ({ silent: true }));
    const running = limited.call({ ...A, service: 1 }, req);
    const queued = limited.call({ ...A, service: 1 }, req);
    const probe = limited.probe(B, { service: 52, request: req });
    const gated = limited.call({ ...B, service: 52 }, req);
    await new Promise((r) => setTimeout(r, 10));
    limited.close();
    for (const p of [running, queued, probe, gated]) await expect(p).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    await expect(limited.call({ ...A, service: 1 }, req)).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
  });

  test('a streamed request and reply', async () => {
    kernel.peer(A.address, A.port, (r) => ({ reply: Buffer.concat([r.data, r.data]) }));
    const call = client.openCall({ ...A, service: 9 });
    await call.write(Buffer.from('ab'));
    await call.write(Buffer.from('cd'));
    await call.end(Buffer.from('e'));
    const parts: Buffer[] = [];
    for await (const chunk of call) parts.push(chunk);
    expect(Buffer.concat(parts).toString()).toBe('abcdeabcde');
    await expect(call.result).resolves.toEqual({ service: 9, peer: A });
    async function* body() {
      yield Buffer.from('x');
      yield Buffer.from('y');
    }
    await expect(client.call({ ...A, service: 9 }, body())).resolves.toMatchObject({ data: Buffer.from('xyxy') });
  });

  test.each([
    [{ ...A, service: 0 }, 'ERR_OUT_OF_RANGE', /"destination.service".*Received 0/],
    [{ ...A, service: 65536 }, 'ERR_OUT_OF_RANGE', /65536/],
    [{ ...A, service: '52' }, 'ERR_INVALID_ARG_TYPE', /"destination.service"/],
    [{ address: 'vl.example.org', port: 7003, service: 52 }, 'ERR_INVALID_ARG_VALUE', /vl.example.org/],
    [{ address: A.address, port: 0, service: 52 }, 'ERR_OUT_OF_RANGE', /"destination.port"/],
  ])('bad destination %j gives %s before any system call', (dest, code, message) => {
    expect(() => client.openCall(dest as never)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
    expect(kernel.sockets).toHaveLength(0);
  });

  test('bad requests and options are typed errors', async () => {
    await expect(client.call({ ...A, service: 1 }, 'text' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => client.openCall({ ...A, service: 1 }, { timeout: -5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: -5 }));
    expect(() => client.openCall({ ...A, service: 1 }, { kernelTimeouts: { idle: 1.5 } })).toThrow(/kernelTimeouts.idle/);
    await expect(client.probe(A, { service: 52, upgradeTo: 52.5, request: req })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(client.probe(A, { service: 52, request: 'x' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => new Client({ maxCallsPerPeer: 0, binding: kernel.binding })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
