/**
 * Bad input through the real kernel: what the fake kernel cannot show.
 * Every method of a closed RawSocket, bad arguments on a live socket (they
 * must leave it untouched: no system call was made), addresses the kernel
 * refuses, and misbehaving handlers and request sources seen from the other
 * end of a real call. The process must survive all of it: an exception in
 * a native callback or an unhandled rejection would end it here.
 */
import { constants } from 'node:os';
import { Client } from '../../lib/client';
import { RX_CALL_DEAD, RX_CALL_TIMEOUT, RX_USER_ABORT } from '../../lib/constants';
import { Endpoint } from '../../lib/endpoint';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError, RxAbortError, TimeoutError } from '../../lib/errors';
import { IncomingCall, Server } from '../../lib/server';
import { RawSocket } from '../../lib/socket';
import {
  detachedView, ErrorClass, expectError, guardProcess, NO_VALUE, rejection, rejectsAtOnce, thrown, until,
} from '../unit/bad-input-harness';
import { freshPort, shortRequestTimeout } from './helpers';

const lastTest = guardProcess();

// Jest gives every test file its own copy of helpers.ts: a range of this file's own.
const port = () => freshPort() + 3000;
const ADDRESS = '127.0.0.1';
const TYPE = [InvalidArgTypeError, 'ERR_INVALID_ARG_TYPE'] as const;
const RANGE = [OutOfRangeError, 'ERR_OUT_OF_RANGE'] as const;
const VALUE = [InvalidArgValueError, 'ERR_INVALID_ARG_VALUE'] as const;

/** The addon's errors come from the main realm, not jest's sandbox: compare fields, not classes. */
const closedError = expect.objectContaining({ name: 'Error', code: 'ERR_SOCKET_CLOSED' });
const sysError = (code: keyof typeof constants.errno, syscall: string) =>
  expect.objectContaining({ code, syscall, errno: -constants.errno[code], message: expect.stringContaining(code) });

describe('bad input: a closed RawSocket refuses everything with ERR_SOCKET_CLOSED', () => {
  let socket: RawSocket;
  beforeEach(() => {
    socket = new RawSocket();
    socket.close();
  });

  test.each<[string, (s: RawSocket) => unknown]>([
    ['bind', (s) => s.bind({ service: 0, address: ADDRESS, port: 0 })],
    ['listen', (s) => s.listen(4)],
    ['setSecurityKey', (s) => s.setSecurityKey('afs@EXAMPLE')],
    ['setSecurityKeyring', (s) => s.setSecurityKeyring('ring')],
    ['setExclusiveConnection', (s) => s.setExclusiveConnection()],
    ['setMinSecurityLevel', (s) => s.setMinSecurityLevel(1)],
    ['setUpgradeableService', (s) => s.setUpgradeableService(52, 2503)],
    ['supportedCmsg', (s) => s.supportedCmsg()],
    ['sendBufferSize (get)', (s) => s.sendBufferSize],
    ['sendBufferSize (set)', (s) => (s.sendBufferSize = 65536)],
    ['receiveBufferSize (get)', (s) => s.receiveBufferSize],
    ['send', (s) => s.send({ callId: 1 }, Buffer.from('x'), { target: { service: 52, address: ADDRESS, port: 7003 } })],
  ])('%s throws', (_what, fn) => {
    expect(thrown(() => fn(socket))).toEqual(closedError);
  });

  test('sendAsync, sendStart and sendBlocking reject at once; close again, ref and unref do nothing', async () => {
    expect(await rejectsAtOnce(socket.sendAsync({ callId: 1 }, Buffer.from('x')))).toEqual(closedError);
    expect(await rejectsAtOnce(socket.sendStart({ callId: 1 }, Buffer.from('x')).sent)).toEqual(closedError);
    expect(await rejectsAtOnce(socket.sendBlocking({ callId: 1 }, Buffer.alloc(100)).sent)).toEqual(closedError);
    socket.close();
    expect(socket.ref()).toBe(socket);
    expect(socket.unref()).toBe(socket);
  });

  test('a bad argument is still named as such, before the closed socket is', () => {
    expectError(thrown(() => socket.bind({ service: 65536, address: ADDRESS, port: 0 })), ...RANGE, 65536);
    expectError(thrown(() => socket.setMinSecurityLevel(3)), ...RANGE, 3);
  });
});

describe('bad input: refused arguments leave a live RawSocket untouched (no system call was made)', () => {
  let socket: RawSocket;
  beforeEach(() => {
    socket = new RawSocket();
  });
  afterEach(() => socket.close());

  test.each<[string, (s: RawSocket) => unknown, readonly [ErrorClass, string], unknown]>([
    ['bind to a host name', (s) => s.bind({ service: 0, address: 'localhost', port: 0 }), VALUE, 'localhost'],
    ['bind to an IPv6 zone', (s) => s.bind({ service: 0, address: 'fe80::1%lo', port: 0 }), VALUE, 'fe80::1%lo'],
    ['bind with port 65536', (s) => s.bind({ service: 0, address: ADDRESS, port: 65536 }), RANGE, 65536],
    ['bind to an array', (s) => s.bind([0, ADDRESS, 0] as never), TYPE, [0, ADDRESS, 0]],
    ['setSecurityKey("")', (s) => s.setSecurityKey(''), VALUE, ''],
    ['setSecurityKey with a NUL', (s) => s.setSecurityKey('afs\0@EXAMPLE'), VALUE, 'afs\0@EXAMPLE'],
    ['setMinSecurityLevel(1.5)', (s) => s.setMinSecurityLevel(1.5), RANGE, 1.5],
    ['sendBufferSize = 0', (s) => (s.sendBufferSize = 0), RANGE, 0],
    ['a send with a target of null', (s) => s.send({ callId: 1 }, Buffer.from('x'), { target: null as never }), TYPE, null],
    ['a send of a detached view', (s) => s.send({ callId: 1 }, detachedView(), { target: { service: 52, address: ADDRESS, port: 7003 } }), VALUE, detachedView()],
  ])('%s', (_what, fn, [cls, code], value) => {
    expectError(thrown(() => fn(socket)), cls, code, value);
    // RXRPC_EXCLUSIVE_CONNECTION is refused with EISCONN once a socket is bound or has sent: it is neither.
    expect(() => socket.setExclusiveConnection()).not.toThrow();
  });

  test.each(['setSecurityKey', 'setSecurityKeyring'] as const)(
    '%s: 4095 bytes reach the kernel (ENOKEY: no such key); 4096, which it would refuse with EINVAL, are refused by name', (method) => {
      // ENOKEY is not in Node's errno table: 126 on Linux.
      expect(thrown(() => socket[method]('k'.repeat(4095)))).toEqual(expect.objectContaining({ code: 'ENOKEY', errno: -126, syscall: 'setsockopt' }));
      expectError(thrown(() => socket[method]('k'.repeat(4096))), ...RANGE, 'k'.repeat(4096));
    });

  test('sendAsync with bad arguments returns a promise that rejects at once', async () => {
    let sent: unknown;
    expect(() => (sent = socket.sendAsync(null as never))).not.toThrow();
    expectError(await rejectsAtOnce(sent), ...TYPE, null);
    expect(() => socket.setExclusiveConnection()).not.toThrow();
  });
});

describe('bad input: addresses the kernel refuses are system errors with code, errno and syscall', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 0 })));
  });

  test('a Server on an address this machine does not have: EADDRNOTAVAIL from bind', () => {
    // 169.254.0.0/16 is never configured in the VM unless a test sets it up.
    expect(thrown(() => new Server({ address: '169.254.77.1', port: port(), services: 52 }, () => undefined)))
      .toEqual(sysError('EADDRNOTAVAIL', 'bind'));
  });

  test('a second Server on the same address and service: EADDRINUSE from bind, the first still serves', async () => {
    const p = port();
    servers.push(new Server({ address: ADDRESS, port: p, services: 52 }, () => Buffer.from('first')));
    expect(thrown(() => new Server({ address: ADDRESS, port: p, services: 52 }, () => undefined))).toEqual(sysError('EADDRINUSE', 'bind'));
    const client = new Client();
    try {
      await expect(client.call({ address: ADDRESS, port: p, service: 52 }, Buffer.from('q'), { timeout: 10000 }))
        .resolves.toMatchObject({ data: Buffer.from('first') });
    } finally {
      client.close();
    }
  });

  test('an IPv4-mapped IPv6 destination is refused by the Client before any socket is made', () => {
    const client = new Client();
    try {
      expectError(thrown(() => client.openCall({ address: '::ffff:127.0.0.1', port: 7003, service: 52 })), ...VALUE, '::ffff:127.0.0.1');
    } finally {
      client.close();
    }
  });
});

describe('bad input: handlers that misbehave, seen from a real client', () => {
  let client: Client;
  let server: Server | undefined;
  const errors: Error[] = [];
  const serve = (handler: (call: IncomingCall) => unknown) => {
    const p = port();
    let first = true;
    server = new Server({ address: ADDRESS, port: p, services: 52 }, (call) => {
      if (!first) return Buffer.from('fine');
      first = false;
      return handler(call) as never;
    });
    server.on('handlerError', (err) => errors.push(err));
    return { address: ADDRESS, port: p, service: 52 };
  };
  beforeEach(() => {
    client = new Client();
    errors.length = 0;
  });
  afterEach(async () => {
    client.close();
    await server?.close({ timeout: 0 });
    server = undefined;
  });

  test.each<[string, () => unknown, string]>([
    ['returns a string', () => 'reply', 'ERR_INVALID_ARG_TYPE'],
    ['returns a view of a detached ArrayBuffer', () => detachedView(), 'ERR_INVALID_ARG_VALUE'],
    ['throws an object without a prototype', () => { throw Object.create(null); }, 'undefined'],
    ['rejects with a Proxy whose traps throw', () => Promise.reject(new Proxy({}, { get() { throw new Error('trap'); } })), 'undefined'],
    ['throws new RxAbortError(0)', () => { throw new RxAbortError(0); }, 'ERR_OUT_OF_RANGE'],
  ])('a handler that %s: the caller sees RX_USER_ABORT, the server reports it and answers the next call', async (_what, handler, code) => {
    const dest = serve(handler);
    const err = await rejection(client.call(dest, Buffer.from('q'), { timeout: 10000 }));
    expect(err).toBeInstanceOf(RxAbortError);
    expect(err).toMatchObject({ abortCode: RX_USER_ABORT, local: false });
    expect(errors.map((e) => String((e as { code?: string }).code))).toEqual([code]);
    await expect(client.call(dest, Buffer.from('q'), { timeout: 10000 })).resolves.toMatchObject({ data: Buffer.from('fine') });
  });

  test('a handler that never settles: close() aborts its call with RX_CALL_DEAD and resolves; the caller hears of it', async () => {
    let signal: AbortSignal | undefined;
    const dest = serve((call) => {
      signal = call.signal;
      return new Promise(() => {});
    });
    const pending = client.call(dest, Buffer.from('q'), { timeout: 10000 });
    await until(() => signal !== undefined);
    await server!.close({ timeout: 0 });
    expect(signal!.aborted).toBe(true);
    expect(await rejection(pending)).toMatchObject({ name: 'RxAbortError', abortCode: RX_CALL_DEAD });
  });
});

describe('bad input: request sources that misbehave, seen from a real server', () => {
  let client: Client;
  let server: Server;
  let calls: IncomingCall[];
  let dest: { address: string; port: number; service: number };
  beforeEach(() => {
    calls = [];
    const p = port();
    server = new Server({ address: ADDRESS, port: p, services: 52 }, async (call) => {
      calls.push(call);
      return Buffer.concat([Buffer.from('got '), await call.request()]);
    });
    dest = { address: ADDRESS, port: p, service: 52 };
    client = new Client({ maxCallsPerPeer: 1 });
  });
  afterEach(async () => {
    client.close();
    await server.close({ timeout: 0 });
  });

  // A first chunk of several packets: the kernel holds back a part-filled packet while MSG_MORE
  // says more follows, so a short first chunk would never reach the server.
  const FIRST = Buffer.alloc(8192, 1);

  /** The server's handler saw the call end early (the client aborted it on the wire). */
  const abortedOnTheWire = async () => {
    await until(() => calls.length === 1 && calls[0].signal.aborted);
    expect(calls[0].signal.reason).toBeInstanceOf(RxAbortError);
  };

  test('a source that stops yielding, with a timeout: TimeoutError (or, first, the server kernel\'s RX_CALL_TIMEOUT on 6.12 and 7.x), the call aborted on the wire, the slot free', async () => {
    const stalled: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => {
        let n = 0;
        return { next: () => (n++ === 0 ? Promise.resolve({ value: FIRST, done: false }) : new Promise(() => {})) };
      },
    };
    const failed = await rejection(client.call(dest, stalled, { timeout: 500 }));
    if (shortRequestTimeout()) {
      // 6.12 and 7.x: the server's kernel gives up on the stalled request after 250 ms, before the client's timeout.
      expect(failed).toMatchObject({ name: 'RxAbortError', abortCode: RX_CALL_TIMEOUT, local: false });
    } else {
      expectError(failed, TimeoutError, 'ETIMEDOUT', NO_VALUE);
    }
    await abortedOnTheWire();
    expect((calls[0].signal.reason as RxAbortError).abortCode).toBe(RX_CALL_TIMEOUT);
    await expect(client.call(dest, Buffer.from('next'), { timeout: 10000 })).resolves.toMatchObject({ data: Buffer.from('got next') });
  });

  test('an iterator whose next() returns null after a chunk: a TypeError, the call aborted on the wire, the slot free', async () => {
    let n = 0;
    const source = { [Symbol.iterator]: () => ({ next: () => (n++ === 0 ? { value: FIRST, done: false } : null) }) };
    expectError(await rejection(client.call(dest, source as never, { timeout: 10000 })), ...TYPE, null);
    await abortedOnTheWire();
    await expect(client.call(dest, Buffer.from('next'), { timeout: 10000 })).resolves.toMatchObject({ data: Buffer.from('got next') });
  });

  test('a source throwing an object without a prototype: rejects with it, the call aborted on the wire, the slot free', async () => {
    const thrownValue = Object.create(null);
    async function* source(): AsyncGenerator<Uint8Array> {
      yield FIRST;
      await until(() => calls.length === 1);
      throw thrownValue;
    }
    await expect(client.call(dest, source(), { timeout: 10000 })).rejects.toBe(thrownValue);
    await abortedOnTheWire();
    await expect(client.call(dest, Buffer.from('next'), { timeout: 10000 })).resolves.toMatchObject({ data: Buffer.from('got next') });
  });

  test('a detached view as the request: refused at once; the server never hears of a call', async () => {
    expectError(await rejectsAtOnce(client.call(dest, detachedView())), ...VALUE, detachedView());
    await expect(client.call(dest, Buffer.from('next'), { timeout: 10000 })).resolves.toMatchObject({ data: Buffer.from('got next') });
    expect(calls).toHaveLength(1);
  });
});

describe('bad input: Endpoint on a real socket', () => {
  let ep: Endpoint;
  let server: Endpoint;
  let target: { service: number; address: string; port: number };
  let got: Buffer[];
  beforeEach(() => {
    ep = new Endpoint();
    // A server endpoint that records each request and answers 'ok' once it is complete.
    server = new Endpoint();
    target = { service: 52, address: ADDRESS, port: port() };
    server.raw.bind(target);
    server.listen(2);
    got = [];
    server.on('call', (call) => {
      call.ondata = (chunk, end) => {
        got.push(chunk);
        if (end) call.write(Buffer.from('ok'), false);
      };
    });
  });
  afterEach(() => {
    ep.close();
    server.close();
  });

  test.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['an array', [52, ADDRESS, 7003]],
  ])('startCall with a target of %s: a TypeError, and no send is made whose failure nobody hears', async (_what, bad) => {
    expectError(thrown(() => ep.startCall(bad as never, Buffer.from('x'), false)), ...TYPE, bad);
    expect(ep.activeCalls).toBe(0);
    // A first send handed to a starter thread without a target would fail there (EDESTADDRREQ)
    // into a promise nobody held; a whole call made afterwards gives it time to show.
    const call = ep.startCall(target, Buffer.from('x'), false);
    await expect(new Promise((resolve) => (call.ondone = resolve))).resolves.toBeUndefined();
    expect(Buffer.concat(got).toString()).toBe('x');
  });

  test('Call.write with a non-boolean more is refused before anything is queued', async () => {
    const call = ep.startCall(target, Buffer.from('x'), true);
    const done = new Promise((resolve) => (call.ondone = resolve));
    expectError(thrown(() => call.write(Buffer.from('lost'), 'no' as never)), ...TYPE, 'no');
    call.write(Buffer.from('y'), false);
    await expect(done).resolves.toBeUndefined();
    expect(Buffer.concat(got).toString()).toBe('xy');
  });
});

test('bad input: nothing in this file left an unhandled rejection, an uncaught exception or a warning', lastTest);
