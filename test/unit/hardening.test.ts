/**
 * Regression tests for defects found by trying the library as a new user
 * would: promises that never settled, crashes, silently mixed send modes,
 * head-of-line blocking, deadlines, limits. Each would fail on the code
 * before the fix.
 */
import { Client } from '../../lib/client';
import { encodeSockaddr } from '../../lib/codec';
import {
  MSG_CTRUNC, MSG_EOR, RX_CALL_TIMEOUT, RX_USER_ABORT, RXGEN_CC_UNMARSHAL, RXGEN_SS_UNMARSHAL, RXRPC_USER_CALL_ID,
} from '../../lib/constants';
import { BULK_MIN, Endpoint } from '../../lib/endpoint';
import { RxAbortError } from '../../lib/errors';
import { probeVL } from '../../lib/afs';
import { closeRacesConnectionTimer } from '../../lib/kernel';
import { IncomingCall, Server } from '../../lib/server';
import { RawSocket } from '../../lib/socket';
import { after } from '../../lib/timers';
import { XdrReader } from '../../lib/xdr';
import { cmsg, FakeKernel } from '../fake-kernel';

const A = { address: '10.9.8.7', port: 17003 };
const B = { address: '10.9.8.6', port: 17003 };
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

function callIdBuf(id: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(id));
  return b;
}

/** The abort codes sent for a call id (accept charges use ids too). */
function aborts(kernel: FakeKernel, callId: number): number[] {
  return kernel.sent.filter((s) => s.callId === callId && s.abort !== undefined).map((s) => s.abort!);
}

/** Captures process warnings for the duration of `body`. */
async function warnings(body: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const spy = jest.spyOn(process, 'emitWarning').mockImplementation((w: string | Error) => {
    seen.push(typeof w === 'string' ? new Error(w) : w);
  });
  try {
    await body();
  } finally {
    spy.mockRestore();
  }
  return seen;
}

describe('every promise of a client call settles', () => {
  let kernel: FakeKernel;
  let client: Client;
  beforeEach(() => {
    kernel = new FakeKernel();
    client = new Client({ binding: kernel.binding, maxCallsPerPeer: 1 });
    kernel.peer(A.address, A.port, ({ data }) => ({ reply: Buffer.from(`got ${data.length}`) }));
  });
  afterEach(() => client.close());

  test('a request iterable that throws rejects with its own error, aborts the call and frees its slot', async () => {
    const boom = new Error('source broke');
    async function* source() {
      yield Buffer.from('part one');
      await tick();
      throw boom;
    }
    await expect(client.call({ ...A, service: 52 }, source())).rejects.toBe(boom);
    expect(kernel.sent.some((s) => s.abort === RX_USER_ABORT)).toBe(true);
    // With one slot per peer, a leaked slot would make this call wait for ever.
    await expect(client.call({ ...A, service: 52 }, Buffer.from('next'))).resolves.toMatchObject({ data: Buffer.from('got 4') });
  });

  test('a source that throws before its first chunk also settles, and nothing reaches the peer', async () => {
    const boom = new Error('no data');
    const source = { [Symbol.iterator]: () => ({ next: () => { throw boom; } }) };
    await expect(client.call({ ...A, service: 52 }, source as unknown as Iterable<Uint8Array>)).rejects.toBe(boom);
    expect(kernel.requests).toHaveLength(0);
    await expect(client.call({ ...A, service: 52 }, Buffer.from('x'))).resolves.toBeDefined();
  });

  test('a chunk that is not a Uint8Array is a TypeError naming it, and the call is aborted', async () => {
    async function* source() {
      yield Buffer.from('ok');
      yield 'not bytes' as unknown as Buffer;
    }
    await expect(client.call({ ...A, service: 52 }, source())).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"not bytes"'),
    });
    await expect(client.call({ ...A, service: 52 }, Buffer.from('x'))).resolves.toBeDefined();
  });

  test('a request that is not iterable is refused before any call exists', async () => {
    await expect(client.call({ ...A, service: 52 }, 'hello' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(client.call({ ...A, service: 52 }, 42 as unknown as Uint8Array)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(kernel.sent).toHaveLength(0);
  });

  test.each([0, 2 ** 32, NaN, 1.5, -(2 ** 31) - 1])('ClientCall.abort(%p) throws a RangeError and leaves the call running', async (code) => {
    const call = client.openCall({ ...A, service: 52 });
    expect(() => call.abort(code)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }));
    await call.end(Buffer.from('still here'));
    await expect(call.result).resolves.toMatchObject({ service: 52 });
    const chunks: Buffer[] = [];
    for await (const c of call) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('got 10');
  });

  test('the last message of a call, truncated by the kernel (MSG_CTRUNC), fails the call instead of hanging it', async () => {
    kernel.peer(A.address, A.port, () => ({ silent: true }));
    const pending = client.call({ ...A, service: 52 }, Buffer.from('q'));
    await tick();
    const { callId, socket } = kernel.requests[0];
    kernel.sockets[socket - 1].deliverBatch([{
      data: Buffer.from('partial'), flags: MSG_EOR | MSG_CTRUNC,
      name: encodeSockaddr({ service: 52, ...A }), control: cmsg(RXRPC_USER_CALL_ID, callIdBuf(callId)),
    }]);
    await expect(pending).rejects.toMatchObject({ name: 'MalformedError', code: 'ERR_RXRPC_MALFORMED', message: expect.stringContaining('MSG_CTRUNC') });
  });

  test('a reply whose address cannot be decoded fails its call and aborts it in the kernel', async () => {
    kernel.peer(A.address, A.port, () => ({ silent: true }));
    const pending = client.call({ ...A, service: 52 }, Buffer.from('q'));
    await tick();
    const { callId, socket } = kernel.requests[0];
    const name = encodeSockaddr({ service: 52, ...A });
    name.writeUInt16LE(99, 8); // a transport family that is neither AF_INET nor AF_INET6
    kernel.sockets[socket - 1].deliverBatch([{ data: Buffer.from('x'), flags: 0, name, control: cmsg(RXRPC_USER_CALL_ID, callIdBuf(callId)) }]);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_RXRPC_MALFORMED', message: expect.stringContaining('transport family 99') });
    expect(kernel.sent.filter((s) => s.callId === callId).map((s) => s.abort)).toContain(RX_USER_ABORT);
  });

  test('several messages in one batch each reach their call; a failed receive after them is a warning, not a crash', async () => {
    const c2 = new Client({ binding: kernel.binding });
    kernel.peer(A.address, A.port, () => ({ silent: true }));
    const p1 = c2.call({ ...A, service: 52 }, Buffer.from('1'));
    const p2 = c2.call({ ...A, service: 52 }, Buffer.from('2'));
    await tick();
    const [r1, r2] = kernel.requests.slice(-2);
    const name = encodeSockaddr({ service: 52, ...A });
    const seen = await warnings(async () => {
      kernel.sockets[r1.socket - 1].deliverBatch([
        { data: Buffer.from('one'), flags: MSG_EOR, name, control: cmsg(RXRPC_USER_CALL_ID, callIdBuf(r1.callId)) },
        { data: Buffer.from('two'), flags: MSG_EOR, name, control: cmsg(RXRPC_USER_CALL_ID, callIdBuf(r2.callId)) },
      ], Object.assign(new Error('recvmsg ENOMEM'), { code: 'ENOMEM', errno: -12, syscall: 'recvmsg' }));
      await expect(p1).resolves.toMatchObject({ data: Buffer.from('one') });
      await expect(p2).resolves.toMatchObject({ data: Buffer.from('two') });
    });
    expect(seen).toEqual([expect.objectContaining({ code: 'ENOMEM' })]);
    c2.close();
  });

  test('a message without a call id, nobody listening for errors: a warning, and the process goes on', async () => {
    const ep = new Endpoint({ binding: kernel.binding });
    const seen = await warnings(async () => {
      kernel.sockets.at(-1)!.deliverBatch([{ data: Buffer.alloc(0), flags: 0, name: Buffer.alloc(36), control: Buffer.alloc(0) }]);
      await tick();
    });
    expect(seen).toEqual([expect.objectContaining({ code: 'ERR_RXRPC_MALFORMED', message: expect.stringContaining('no RXRPC_USER_CALL_ID') })]);
    ep.close();
  });
});

describe('how a call sends, and what holds it up', () => {
  let kernel: FakeKernel;
  let ep: Endpoint;
  beforeEach(() => {
    kernel = new FakeKernel();
    ep = new Endpoint({ binding: kernel.binding });
  });
  afterEach(() => ep.close());

  test('a first send the window cut short keeps the call on MSG_DONTWAIT, even for a later 64 KiB chunk', async () => {
    const got: Buffer[] = [];
    kernel.peer(A.address, A.port, ({ data }) => {
      got.push(data);
      return { reply: Buffer.from('ok') };
    });
    kernel.startTakes = 100;
    kernel.window = 4000;
    const first = Buffer.alloc(3000, 1);
    const big = Buffer.alloc(BULK_MIN * 2, 2);
    const call = ep.startCall({ ...A, service: 9 }, first, true);
    const done = new Promise((r) => (call.ondone = r));
    call.write(big, false);
    await expect(done).resolves.toBeUndefined();
    expect(got).toEqual([Buffer.concat([first, big])]);
    expect(call.sendMode).toBe('dontwait');
    expect(kernel.sent.filter((s) => s.callId === call.id && s.blocking)).toEqual([]);
    expect(kernel.sent.find((s) => s.callId === call.id)!.bytes).toBe(100);
  });

  test('a call whose small sends were all taken whole still sends a later 64 KiB chunk on a bulk thread', async () => {
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('ok') }));
    const call = ep.startCall({ ...A, service: 9 }, Buffer.alloc(32, 1), true);
    const done = new Promise((r) => (call.ondone = r));
    await tick();
    expect(call.sendMode).toBeUndefined();
    call.write(Buffer.alloc(BULK_MIN, 2), false);
    await expect(done).resolves.toBeUndefined();
    expect(call.sendMode).toBe('bulk');
    expect(kernel.sent.filter((s) => s.callId === call.id).map((s) => s.blocking)).toEqual([false, true]);
  });

  test('the rest of a cut-short first send is the call\'s own copy: the caller may reuse its buffer at once', async () => {
    const got: Buffer[] = [];
    kernel.peer(A.address, A.port, ({ data }) => {
      got.push(data);
      return { reply: Buffer.from('ok') };
    });
    kernel.startTakes = 10;
    const first = Buffer.from('0123456789abcdefghij');
    const call = ep.startCall({ ...A, service: 9 }, first, false);
    const done = new Promise((r) => (call.ondone = r));
    first.fill(0x58); // the caller reuses its buffer
    await expect(done).resolves.toBeUndefined();
    expect(got[0].toString()).toBe('0123456789abcdefghij');
  });

  test('a queued write is copied: overwriting the buffer after write() changes nothing on the wire', async () => {
    const got: Buffer[] = [];
    kernel.peer(A.address, A.port, ({ data }) => {
      got.push(data);
      return { reply: Buffer.from('ok') };
    });
    kernel.window = 0; // nothing is taken at once: every write waits in the queue
    const call = ep.startCall({ ...A, service: 9 }, Buffer.alloc(0), true);
    const done = new Promise((r) => (call.ondone = r));
    await tick();
    const chunk = Buffer.from('original bytes');
    call.write(chunk, false);
    chunk.fill(0);
    kernel.window = undefined;
    await expect(done).resolves.toBeUndefined();
    expect(got[0].toString()).toBe('original bytes');
  });

  test('a write the kernel takes in part, with nothing queued before it, keeps a copy of the rest', async () => {
    const got: Buffer[] = [];
    kernel.peer(A.address, A.port, ({ data }) => {
      got.push(data);
      return { reply: Buffer.from('ok') };
    });
    const call = ep.startCall({ ...A, service: 9 }, Buffer.alloc(0), true);
    const done = new Promise((r) => (call.ondone = r));
    await tick();
    kernel.window = 5; // the write goes straight to the kernel, which takes 5 bytes of it
    const chunk = Buffer.from('original bytes');
    call.write(chunk, false);
    expect(call.queuedBytes).toBe(chunk.length - 5);
    chunk.fill(0);
    kernel.window = undefined;
    await expect(done).resolves.toBeUndefined();
    expect(got[0].toString()).toBe('original bytes');
    expect(kernel.sent.filter((s) => s.callId === call.id && s.bytes > 0).map((s) => s.bytes)).toEqual([5, chunk.length - 5]);
    expect(ep.stats.partialSends).toBe(1);
  });

  test('a first send asleep for one peer holds up no call to another; its timeout frees it', async () => {
    kernel.startHangs.add(`${A.address}|${A.port}`);
    kernel.peer(B.address, B.port, () => ({ reply: Buffer.from('b') }));
    const client = new Client({ binding: kernel.binding });
    const stuck = client.call({ ...A, service: 52 }, Buffer.from('a'), { timeout: 50 });
    await expect(client.call({ ...B, service: 52 }, Buffer.from('b'))).resolves.toMatchObject({ data: Buffer.from('b') });
    await expect(stuck).rejects.toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT' });
    await tick();
    expect(kernel.log.some((l) => l.startsWith('interrupted start'))).toBe(true);
    client.close();
  });

  test('aborting a call whose first send is asleep interrupts it, and aborts the call once the kernel returns', async () => {
    kernel.startHangs.add(`${A.address}|${A.port}`);
    const call = ep.startCall({ ...A, service: 9 }, Buffer.from('x'), false);
    const done = new Promise<Error | undefined>((r) => (call.ondone = r));
    call.abort(RX_CALL_TIMEOUT);
    await expect(done).resolves.toMatchObject({ abortCode: RX_CALL_TIMEOUT, local: true });
    await tick();
    expect(kernel.log.filter((l) => l.startsWith('interrupt'))).toHaveLength(2); // asked, then done
    expect(kernel.sent.filter((s) => s.callId === call.id).map((s) => s.abort)).toEqual([RX_CALL_TIMEOUT]);
  });
});

describe('deadlines', () => {
  let kernel: FakeKernel;
  let client: Client;
  beforeEach(() => {
    kernel = new FakeKernel();
    client = new Client({ binding: kernel.binding });
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from('late'), delay: 30 }));
  });
  afterEach(() => client.close());

  test.each([
    ['a timeout beyond 24.8 days', { timeout: 2 ** 31 + 5 }],
    ['timeout: Infinity', { timeout: Infinity }],
    ['a deadline a year away', { deadline: new Date(Date.now() + 365 * 86400e3) }],
    ['deadline: Infinity', { deadline: Infinity }],
  ])('%s does not time the call out at once', async (_what, options) => {
    await expect(client.call({ ...A, service: 52 }, Buffer.from('q'), options)).resolves.toMatchObject({ data: Buffer.from('late') });
  });

  test.each([
    ['timeout: NaN', { timeout: NaN }, 'ERR_OUT_OF_RANGE'],
    ['timeout: -1', { timeout: -1 }, 'ERR_OUT_OF_RANGE'],
    ['deadline: NaN', { deadline: NaN }, 'ERR_OUT_OF_RANGE'],
    ['an invalid Date', { deadline: new Date('no such day') }, 'ERR_INVALID_ARG_VALUE'],
    ['a deadline string', { deadline: '2030-01-01' as unknown as Date }, 'ERR_INVALID_ARG_TYPE'],
  ])('%s is a typed error before anything is sent', async (_what, options, code) => {
    await expect(client.call({ ...A, service: 52 }, Buffer.from('q'), options)).rejects.toMatchObject({ code });
    expect(kernel.sent).toHaveLength(0);
  });

  test('after() waits past setTimeout\'s limit in steps', () => {
    jest.useFakeTimers();
    try {
      const fn = jest.fn();
      after(2 ** 31 + 1000, fn);
      jest.advanceTimersByTime(2 ** 31 - 1);
      expect(fn).not.toHaveBeenCalled();
      jest.advanceTimersByTime(500);
      expect(fn).not.toHaveBeenCalled();
      jest.advanceTimersByTime(600);
      expect(fn).toHaveBeenCalledTimes(1);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('limits', () => {
  test('a reply over maxReplyBytes fails with SizeLimitError and is aborted with RXGEN_CC_UNMARSHAL', async () => {
    const kernel = new FakeKernel();
    const client = new Client({ binding: kernel.binding, maxReplyBytes: 1000 });
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.alloc(1001) }));
    await expect(client.call({ ...A, service: 52 }, Buffer.from('q'))).rejects.toMatchObject({
      name: 'SizeLimitError', code: 'ERR_RXRPC_TOO_LARGE', limit: 1000, received: 1001,
    });
    expect(kernel.sent.map((s) => s.abort)).toContain(RXGEN_CC_UNMARSHAL);
    // Per call, the limit can be raised.
    await expect(client.call({ ...A, service: 52 }, Buffer.from('q'), { maxReplyBytes: 1001 })).resolves.toBeDefined();
    client.close();
  });

  test('the default reply limit is finite (4 MiB)', async () => {
    const kernel = new FakeKernel();
    const client = new Client({ binding: kernel.binding });
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.alloc(4 * 1024 * 1024 + 1) }));
    await expect(client.call({ ...A, service: 52 }, Buffer.from('q'))).rejects.toMatchObject({ code: 'ERR_RXRPC_TOO_LARGE', limit: 4 * 1024 * 1024 });
    client.close();
  });

  test('a request over the server\'s default limit is aborted with RXGEN_SS_UNMARSHAL; its handler hears why', async () => {
    const kernel = new FakeKernel();
    let seen: unknown;
    const server = new Server({ address: '127.0.0.1', port: 7001, services: 52, binding: kernel.binding }, async (call) => {
      seen = await call.request().catch((e) => e);
    });
    kernel.callServer(kernel.sockets[0], 1, Buffer.alloc(4 * 1024 * 1024 + 1), 52);
    await tick();
    expect(seen).toMatchObject({ code: 'ERR_RXRPC_TOO_LARGE', what: 'request', limit: 4 * 1024 * 1024 });
    expect(aborts(kernel, 1)).toEqual([RXGEN_SS_UNMARSHAL]);
    await server.close({ timeout: 10 });
  });
});

describe('server handlers that misbehave do not bring the server down', () => {
  let kernel: FakeKernel;
  let server: Server;
  const errors: Array<[Error, number | undefined]> = [];
  function serve(handler: (call: IncomingCall) => unknown) {
    kernel = new FakeKernel();
    errors.length = 0;
    server = new Server({ address: '127.0.0.1', port: 7001, services: 52, binding: kernel.binding }, handler as never);
    server.on('handlerError', (err, _call, code) => errors.push([err, code]));
    return kernel.sockets[0];
  }
  afterEach(() => server.close({ timeout: 10 }));

  test.each([0, 2 ** 32, NaN])('a handler throwing new RxAbortError(%p) aborts with RX_USER_ABORT and says why', async (code) => {
    const socket = serve(async () => {
      throw new RxAbortError(code);
    });
    kernel.callServer(socket, 1, Buffer.from('x'), 52);
    await tick();
    expect(aborts(kernel, 1)).toEqual([RX_USER_ABORT]);
    expect(errors).toEqual([[expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining(String(code)) }), RX_USER_ABORT]]);
    // The server still serves.
    kernel.callServer(socket, 2, Buffer.from('y'), 52);
    await tick();
    expect(aborts(kernel, 2)).toEqual([RX_USER_ABORT]);
  });

  test('request() called twice gives both callers the whole request', async () => {
    let both: Buffer[] = [];
    const socket = serve(async (call) => {
      both = await Promise.all([call.request(), call.request()]);
      return both[0];
    });
    const reply = kernel.callServer(socket, 1, Buffer.from('twice'), 52);
    await tick();
    expect(both.map(String)).toEqual(['twice', 'twice']);
    expect(Buffer.concat(reply).toString()).toBe('twice');
  });

  test('a handler that ended its reply and then returns bytes is reported, not silently dropped', async () => {
    const socket = serve(async (call) => {
      await call.end(Buffer.from('first'));
      return Buffer.from('second');
    });
    const reply = kernel.callServer(socket, 1, Buffer.from('x'), 52);
    await tick();
    expect(Buffer.concat(reply).toString()).toBe('first');
    expect(errors).toEqual([[expect.objectContaining({ code: 'ERR_STREAM_WRITE_AFTER_END' }), undefined]]);
  });

  test('close() with a bad timeout rejects instead of throwing, and the server still closes later', async () => {
    serve(() => Buffer.alloc(0));
    let closing: Promise<void> | undefined;
    expect(() => (closing = server.close({ timeout: -1 }))).not.toThrow();
    await expect(closing).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(server.close({ timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(server.close(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  test('a handler error with nobody listening becomes a process warning', async () => {
    kernel = new FakeKernel();
    server = new Server({ address: '127.0.0.1', port: 7001, services: 52, binding: kernel.binding }, () => {
      throw new Error('handler bug');
    });
    const seen = await warnings(async () => {
      kernel.callServer(kernel.sockets[0], 1, Buffer.from('x'), 52);
      await tick();
    });
    expect(seen.map((e) => e.message)).toEqual(['handler bug']);
  });
});

describe('inputs that used to be taken silently', () => {
  test('probeVL against a server whose reply is not a capability list rejects and learns nothing', async () => {
    const kernel = new FakeKernel();
    const client = new Client({ binding: kernel.binding });
    kernel.peer(A.address, A.port, () => ({ reply: Buffer.from([0xff, 0xff, 0xff, 0xff]) }));
    await expect(probeVL(client, A)).rejects.toMatchObject({ code: 'ERR_RXRPC_MALFORMED' });
    expect(client.learnedService(A, 52)).toBeUndefined();
    client.close();
  });

  test.each([
    [{ exclusive: 'yes' }, 'options.exclusive'],
    [{ useLearnedService: 'no' }, 'options.useLearnedService'],
  ])('call option %p is not taken as a boolean', async (options, name) => {
    const client = new Client({ binding: new FakeKernel().binding });
    expect(() => client.openCall({ ...A, service: 52 }, options as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining(name) }));
    client.close();
  });

  test('new Client({ batch: 0 }) is refused at once', () => {
    expect(() => new Client({ batch: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: 0 }));
  });

  test('an IPv4-mapped IPv6 address is refused with a pointer to the IPv4 form', () => {
    const client = new Client({ binding: new FakeKernel().binding });
    expect(() => client.openCall({ address: '::ffff:127.0.0.1', port: 7003, service: 52 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('IPv4-mapped') }));
    client.close();
  });

  test('a very long value is shortened in the message', () => {
    const client = new Client({ binding: new FakeKernel().binding });
    let message = '';
    try {
      client.openCall({ address: 'x'.repeat(100000), port: 7003, service: 52 });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('(100000 characters)');
    expect(message.length).toBeLessThan(300);
    client.close();
  });

  test.each([
    ['fixed(-1)', (r: XdrReader) => r.fixed(-1)],
    ['fixed(NaN)', (r: XdrReader) => r.fixed(NaN)],
    ['chars(-1)', (r: XdrReader) => r.chars(-1)],
    ['opaque(-5)', (r: XdrReader) => r.opaque(-5)],
  ])('XdrReader.%s is a RangeError and does not move the reader', (_what, read) => {
    const r = new XdrReader(Buffer.alloc(16));
    expect(() => read(r)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(r.position).toBe(0);
    expect(r.remaining).toBe(16);
  });
});

describe('closing a client socket just after a call ended (the 6.2 to 7.2 connection-timer race)', () => {
  test('closeRacesConnectionTimer: stock 6.2 to 7.2 only, never with the fixed module', () => {
    expect(closeRacesConnectionTimer('6.12.95+deb12-amd64', undefined)).toBe(true);
    expect(closeRacesConnectionTimer('6.2.0', undefined)).toBe(true);
    expect(closeRacesConnectionTimer('7.2.9', undefined)).toBe(true);
    expect(closeRacesConnectionTimer('6.12.95+deb12-amd64', 'upgrade-fix.3')).toBe(false);
    expect(closeRacesConnectionTimer('6.1.0-57-amd64', undefined)).toBe(false); // no I/O thread: work queues
    expect(closeRacesConnectionTimer('7.3.4+deb13-amd64', undefined)).toBe(false); // checks for a gone thread
    expect(closeRacesConnectionTimer('unknown', undefined)).toBe(false);
  });

  const endOfCall = (kernel: FakeKernel) => kernel.sockets[kernel.sockets.length - 1].deliverAbort(7, RX_USER_ABORT);

  test('the descriptor stays open until the final ACK is due, then closes; nothing is read meanwhile', async () => {
    const kernel = new FakeKernel();
    const raw = new RawSocket({ binding: kernel.binding, closeLinger: true });
    const seen: string[] = [];
    raw.on('message', (m) => seen.push(m.kind));
    endOfCall(kernel);
    expect(seen).toEqual(['abort']);
    const fake = kernel.sockets[0];
    raw.close();
    expect(raw.isClosed).toBe(true);
    expect(fake.closed).toBe(false);
    fake.deliverAbort(8, RX_USER_ABORT); // arrives while lingering: not reported
    await new Promise((r) => setTimeout(r, 80));
    expect(fake.closed).toBe(true);
    expect(seen).toEqual(['abort']);
  });

  test('closed at once: a socket bound to a service (a server socket), one whose last call ended long ago, or where the kernel needs no wait', async () => {
    const kernel = new FakeKernel();
    const bound = new RawSocket({ binding: kernel.binding, closeLinger: true });
    bound.bind({ service: 52, address: '127.0.0.1', port: 7001 });
    endOfCall(kernel);
    bound.close();
    expect(kernel.sockets[0].closed).toBe(true);

    const idle = new RawSocket({ binding: kernel.binding, closeLinger: true });
    endOfCall(kernel);
    await new Promise((r) => setTimeout(r, 80));
    idle.close();
    expect(kernel.sockets[1].closed).toBe(true);

    const fine = new RawSocket({ binding: kernel.binding, closeLinger: false });
    endOfCall(kernel);
    fine.close();
    expect(kernel.sockets[2].closed).toBe(true);
  });

  test('closeLinger must be a boolean', () => {
    const kernel = new FakeKernel();
    expect(() => new RawSocket({ binding: kernel.binding, closeLinger: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"yes"') }));
  });
});
