/**
 * Bad input to the server side of the public API: Server (options, handler
 * results, close) and IncomingCall (request, iterator, write, end, abort), on
 * the fake kernel. A misbehaving handler must never bring the server down:
 * its call is aborted, 'handlerError' says why, and the next call is served.
 */
import { once } from 'node:events';
import { RX_CALL_DEAD, RX_USER_ABORT, RXGEN_OPCODE, RXGEN_SS_UNMARSHAL } from '../../lib/constants';
import {
  InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError, RxAbortError,
} from '../../lib/errors';
import { fixedModuleVersion, IncomingCall, Server, ServerOptions, upgradeWarning } from '../../lib/server';
import { FakeKernel, FakeSocket } from '../fake-kernel';
import {
  abortsOf, detachedView, ErrorClass, expectError, guardProcess, NO_VALUE, rejection, rejectsAtOnce, thrown, until, withBinding,
} from './bad-input-harness';

const lastTest = guardProcess();

const TYPE = [InvalidArgTypeError, 'ERR_INVALID_ARG_TYPE'] as const;
const RANGE = [OutOfRangeError, 'ERR_OUT_OF_RANGE'] as const;
const VALUE = [InvalidArgValueError, 'ERR_INVALID_ARG_VALUE'] as const;
const BASE = { address: '127.0.0.1', port: 7001, services: 52 };

let kernel: FakeKernel;
beforeEach(() => {
  kernel = new FakeKernel();
});

describe('bad input: new Server(options, handler)', () => {
  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['options null', null, TYPE, null],
    ['options a string', '127.0.0.1:7001', TYPE, '127.0.0.1:7001'],
    ['options a number', 7001, TYPE, 7001],
    ['options an array', [BASE], TYPE, [BASE]],
    ['a host name', { ...BASE, address: 'localhost' }, VALUE, 'localhost'],
    ['an empty address', { ...BASE, address: '' }, VALUE, ''],
    ['a leading space', { ...BASE, address: ' 127.0.0.1' }, VALUE, ' 127.0.0.1'],
    ['an IPv6 zone', { ...BASE, address: 'fe80::1%lo' }, VALUE, 'fe80::1%lo'],
    ['IPv4-mapped IPv6', { ...BASE, address: '::ffff:127.0.0.1' }, VALUE, '::ffff:127.0.0.1'],
    ['a 100,000-character address', { ...BASE, address: 'a'.repeat(100000) }, VALUE, 'a'.repeat(100000)],
    ['address null', { ...BASE, address: null }, TYPE, null],
    ['address a number', { ...BASE, address: 2130706433 }, TYPE, 2130706433],
    ['port 0 (the kernel would not say which port it chose)', { ...BASE, port: 0 }, RANGE, 0],
    ['port 65536', { ...BASE, port: 65536 }, RANGE, 65536],
    ['port -1', { ...BASE, port: -1 }, RANGE, -1],
    ['port 1.5', { ...BASE, port: 1.5 }, RANGE, 1.5],
    ['port "7001"', { ...BASE, port: '7001' }, TYPE, '7001'],
    ['port undefined', { ...BASE, port: undefined }, TYPE, undefined],
    ['services []', { ...BASE, services: [] }, VALUE, []],
    ['three services', { ...BASE, services: [1, 2, 3] }, VALUE, [1, 2, 3]],
    ['the same service twice', { ...BASE, services: [52, 52] }, VALUE, [52, 52]],
    ['service 0', { ...BASE, services: 0 }, RANGE, 0],
    ['service 65536 second', { ...BASE, services: [52, 65536] }, RANGE, 65536],
    ['service "2503" second', { ...BASE, services: [52, '2503'] }, TYPE, '2503'],
    ['services null', { ...BASE, services: null }, TYPE, null],
    ['services a string', { ...BASE, services: '52' }, TYPE, '52'],
    ['services a Uint16Array', { ...BASE, services: new Uint16Array([52]) }, TYPE, new Uint16Array([52])],
    ['services with a hole', { ...BASE, services: [, 52] }, TYPE, undefined], // eslint-disable-line no-sparse-arrays
    ['an upgrade to a service not bound', { ...BASE, services: [52, 2503], upgrade: { from: 52, to: 2504 } }, VALUE, { from: 52, to: 2504 }],
    ['an upgrade with one service bound', { ...BASE, upgrade: { from: 52, to: 2503 } }, VALUE, { from: 52, to: 2503 }],
    ['an upgrade from a service to itself', { ...BASE, services: [52, 2503], upgrade: { from: 52, to: 52 } }, VALUE, { from: 52, to: 52 }],
    ['an upgrade from service 0', { ...BASE, services: [52, 2503], upgrade: { from: 0, to: 2503 } }, RANGE, 0],
    ['upgrade a string', { ...BASE, services: [52, 2503], upgrade: '52->2503' }, TYPE, '52->2503'],
    ['upgrade null', { ...BASE, services: [52, 2503], upgrade: null }, TYPE, null],
    ['upgrade an array', { ...BASE, services: [52, 2503], upgrade: [52, 2503] }, TYPE, [52, 2503]],
    ['backlog 0', { ...BASE, backlog: 0 }, RANGE, 0],
    ['backlog above net.rxrpc.max_backlog', { ...BASE, backlog: 1000 }, RANGE, 1000],
    ['backlog -1', { ...BASE, backlog: -1 }, RANGE, -1],
    ['backlog 1.5', { ...BASE, backlog: 1.5 }, RANGE, 1.5],
    ['backlog NaN', { ...BASE, backlog: NaN }, RANGE, NaN],
    ['backlog Infinity', { ...BASE, backlog: Infinity }, RANGE, Infinity],
    ['backlog "5"', { ...BASE, backlog: '5' }, TYPE, '5'],
    ['backlog null', { ...BASE, backlog: null }, TYPE, null],
    ['maxRequestBytes -1', { ...BASE, maxRequestBytes: -1 }, RANGE, -1],
    ['maxRequestBytes 1.5', { ...BASE, maxRequestBytes: 1.5 }, RANGE, 1.5],
    ['maxRequestBytes NaN', { ...BASE, maxRequestBytes: NaN }, RANGE, NaN],
    ['maxRequestBytes "1"', { ...BASE, maxRequestBytes: '1' }, TYPE, '1'],
    ['maxRequestBytes null', { ...BASE, maxRequestBytes: null }, TYPE, null],
    ['batch 0', { ...BASE, batch: 0 }, RANGE, 0],
    ['batch 1025', { ...BASE, batch: 1025 }, RANGE, 1025],
    ['binding a string', { ...BASE, binding: 'fake' }, TYPE, 'fake'],
  ])('%s: refused before any socket is opened', (_what, options, [cls, code], value) => {
    expectError(thrown(() => new Server(withBinding(options, kernel) as never, () => undefined)), cls, code, value);
    expect(kernel.sockets).toHaveLength(0);
  });

  test.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'handler'],
    ['an object', { handle() {} }],
    ['a Promise', Promise.resolve()],
  ])('a handler that is %s: refused before any socket is opened', (_what, handler) => {
    const err = expectError(thrown(() => new Server({ ...BASE, binding: kernel.binding }, handler as never)), ...TYPE, handler);
    expect(err.message).toContain('"handler"');
    expect(kernel.sockets).toHaveLength(0);
  });

  test('an options getter that throws: that error, and no socket is opened', () => {
    const boom = new Error('getter');
    const options = { ...BASE, binding: kernel.binding, get backlog(): number { throw boom; } };
    expect(thrown(() => new Server(options, () => undefined))).toBe(boom);
    expect(kernel.sockets).toHaveLength(0);
  });
});

/** A server on the fake kernel whose handler errors are collected; and a way to call it. */
function serve(handler: (call: IncomingCall) => unknown, options: Partial<ServerOptions> = {}) {
  const server = new Server({ ...BASE, binding: kernel.binding, ...options }, handler as never);
  const socket: FakeSocket = kernel.sockets[kernel.sockets.length - 1];
  const errors: Array<{ error: Error; code: number | undefined }> = [];
  server.on('handlerError', (error, _call, code) => errors.push({ error, code }));
  let nextId = 1; // the accept charges are ids 1 to the backlog
  const call = (request = Buffer.from('request')) => {
    const id = nextId++;
    return { id, reply: kernel.callServer(socket, id, request, 52) };
  };
  return { server, errors, call };
}

describe('bad input: what handlers return and throw', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await server?.close({ timeout: 0 });
    server = undefined;
  });

  /**
   * Runs `handler` for one call: the call must be aborted with `abortCode`
   * and, when `reported`, a handlerError of that class and code must say
   * why; then a second call must still be answered.
   */
  async function misbehaves(handler: (call: IncomingCall) => unknown, abortCode: number,
    reported?: { cls: ErrorClass; code: string | undefined; value?: unknown; text?: string }) {
    let first = true;
    const s = serve((call) => {
      if (!first) return Buffer.from('fine');
      first = false;
      return handler(call);
    });
    server = s.server;
    const bad = s.call();
    await until(() => abortsOf(kernel, bad.id).length > 0);
    expect(abortsOf(kernel, bad.id)).toEqual([abortCode]);
    if (reported) {
      expect(s.errors).toHaveLength(1);
      const { error, code } = s.errors[0];
      expect(code).toBe(abortCode);
      expect(error).toBeInstanceOf(reported.cls);
      expect((error as Error & { code?: string }).code).toBe(reported.code);
      if (reported.text !== undefined) expect(error.message).toContain(reported.text);
      if (reported.value !== undefined) expectError(error, reported.cls, reported.code!, reported.value);
    } else {
      expect(s.errors).toEqual([]);
    }
    const good = s.call();
    await until(() => Buffer.concat(good.reply).toString() === 'fine');
    expect(abortsOf(kernel, good.id)).toEqual([]);
  }

  const notReplies: Array<[string, unknown]> = [
    ['a string', 'reply'],
    ['a number', 42],
    ['a plain object', { data: 'x' }],
    ['an array of bytes', [1, 2, 3]],
    ['true', true],
    ['null', null],
    ['a symbol', Symbol('reply')],
    ['a bigint', 7n],
    ['a Uint16Array', new Uint16Array(2)],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a boxed string', new String('reply')],
  ];

  test.each(notReplies)('returning %s: RX_USER_ABORT, and handlerError names the value', async (_what, value) => {
    await misbehaves(() => value, RX_USER_ABORT, { cls: InvalidArgTypeError, code: 'ERR_INVALID_ARG_TYPE', value });
  });

  test.each(notReplies.slice(0, 4))('resolving to %s: RX_USER_ABORT, and handlerError names the value', async (_what, value) => {
    await misbehaves(async () => value, RX_USER_ABORT, { cls: InvalidArgTypeError, code: 'ERR_INVALID_ARG_TYPE', value });
  });

  test.each<[string, unknown, string]>([
    ['a string', 'handler broke', 'handler broke'],
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
    ['a number', 42, '42'],
    ['an Error', new Error('handler broke'), 'handler broke'],
    ['a TypeError', new TypeError('bad type'), 'bad type'],
  ])('throwing %s: RX_USER_ABORT and a handlerError', async (_what, value, text) => {
    await misbehaves(() => { throw value; }, RX_USER_ABORT, { cls: Error, code: (value as { code?: string })?.code, text });
  });

  test.each<[string, unknown, string]>([
    ['a string', 'handler broke', 'handler broke'],
    ['undefined', undefined, 'undefined'],
    ['an Error', new Error('async broke'), 'async broke'],
  ])('rejecting with %s: RX_USER_ABORT and a handlerError', async (_what, value, text) => {
    await misbehaves(() => Promise.reject(value), RX_USER_ABORT, { cls: Error, code: undefined, text });
  });

  const unprintable: Array<[string, unknown, string]> = [
    ['an object without a prototype', Object.create(null), '{}'],
    ['an object whose toString throws', { toString() { throw new Error('no string'); } }, '{}'],
    ['an object whose Symbol.toPrimitive throws', { [Symbol.toPrimitive]() { throw new Error('no primitive'); } }, '{}'],
    ['a Proxy whose traps throw', new Proxy({}, { get() { throw new Error('trap'); } }), 'Proxy'],
  ];

  test.each(unprintable)('throwing %s (it cannot be made a string): RX_USER_ABORT and a handlerError, never a crash', async (_what, value, text) => {
    await misbehaves(() => { throw value; }, RX_USER_ABORT, { cls: Error, code: undefined, text });
  });

  test.each(unprintable)('rejecting with %s: RX_USER_ABORT and a handlerError, never an unhandled rejection', async (_what, value, text) => {
    await misbehaves(() => Promise.reject(value), RX_USER_ABORT, { cls: Error, code: undefined, text });
  });

  test.each<[string, number]>([
    ['0', 0],
    ['2**32', 2 ** 32],
    ['NaN', NaN],
    ['1.5', 1.5],
    ['Infinity', Infinity],
    ['-(2**31) - 1', -(2 ** 31) - 1],
  ])('throwing new RxAbortError(%s): RX_USER_ABORT instead, and a RangeError naming the code', async (_what, code) => {
    await misbehaves(() => { throw new RxAbortError(code); }, RX_USER_ABORT, { cls: OutOfRangeError, code: 'ERR_OUT_OF_RANGE', value: code });
  });

  test('returning a view of a detached ArrayBuffer: RX_USER_ABORT and a handlerError, not an empty reply', async () => {
    await misbehaves(() => detachedView(), RX_USER_ABORT, { cls: InvalidArgValueError, code: 'ERR_INVALID_ARG_VALUE', value: detachedView() });
  });

  test.each<[string, () => unknown, string]>([
    ['a thenable whose then() throws', () => ({ then() { throw new Error('then broke'); } }), 'then broke'],
    ['a thenable whose then getter throws', () => ({ get then() { throw new Error('no then'); } }), 'no then'],
    ['a Proxy whose traps throw', () => new Proxy({}, { get() { throw new Error('trap'); } }), 'trap'],
  ])('returning %s: RX_USER_ABORT and a handlerError with its error', async (_what, make, text) => {
    await misbehaves(make, RX_USER_ABORT, { cls: Error, code: undefined, text });
  });

  test('a thenable resolving to a string: RX_USER_ABORT, and handlerError names the value', async () => {
    await misbehaves(() => ({ then(resolve: (v: unknown) => void) { resolve('late'); } }), RX_USER_ABORT,
      { cls: InvalidArgTypeError, code: 'ERR_INVALID_ARG_TYPE', value: 'late' });
  });

  test('throwing an RxAbortError with a good code aborts with it, unreported', async () => {
    await misbehaves(() => { throw new RxAbortError(RXGEN_OPCODE); }, RXGEN_OPCODE);
  });

  test('throwing a MalformedError (a request that does not decode) aborts with RXGEN_SS_UNMARSHAL', async () => {
    await misbehaves(() => { throw new MalformedError('XDR', 'short'); }, RXGEN_SS_UNMARSHAL,
      { cls: MalformedError, code: 'ERR_RXRPC_MALFORMED', text: 'short' });
  });

  test('a class as handler (it throws when called): RX_USER_ABORT and a handlerError', async () => {
    class NotAHandler {}
    await misbehaves((call) => (NotAHandler as unknown as (c: IncomingCall) => unknown)(call), RX_USER_ABORT,
      { cls: TypeError, code: undefined, text: 'NotAHandler' });
  });

  test('a handler that never settles: close() still ends its call with RX_CALL_DEAD, fires its signal, and resolves', async () => {
    let signal: AbortSignal | undefined;
    const s = serve((call) => {
      signal = call.signal;
      return new Promise(() => {});
    });
    server = s.server;
    const { id } = s.call();
    await until(() => signal !== undefined);
    expect(s.server.activeCalls).toBe(1);
    await s.server.close({ timeout: 0 });
    expect(abortsOf(kernel, id)).toEqual([RX_CALL_DEAD]);
    expect(signal!.aborted).toBe(true);
    expect(kernel.sockets[0].closed).toBe(true);
  });

  test('a handler that ended its reply and returns more: reported, never sent', async () => {
    const s = serve(async (call) => {
      await call.end(Buffer.from('first'));
      return Buffer.from('second');
    });
    server = s.server;
    const { reply } = s.call();
    const [error, , code] = await once(s.server, 'handlerError');
    expectError(error, Error, 'ERR_STREAM_WRITE_AFTER_END', NO_VALUE, '6 bytes after it had ended its reply');
    expect(code).toBeUndefined();
    expect(Buffer.concat(reply).toString()).toBe('first');
  });
});

describe('bad input: IncomingCall', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await server?.close({ timeout: 0 });
    server = undefined;
  });

  /** Runs `body` inside a handler; its result is what the test awaits. The handler then replies 'ok'. */
  async function inHandler<T>(body: (call: IncomingCall) => Promise<T>): Promise<{ value: T; reply: Buffer[]; id: number }> {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const s = serve(async (call) => {
      try {
        resolve(await body(call));
      } catch (err) {
        reject(err);
      }
      if (!call.signal.aborted) await call.end(Buffer.from('ok')).catch(() => {});
    });
    server = s.server;
    const { id, reply } = s.call();
    return { value: await result, reply, id };
  }

  test.each<[string, unknown]>([
    ['null', null],
    ['a string', 'text'],
    ['a number', 1],
    ['a Uint16Array', new Uint16Array(2)],
    ['an ArrayBuffer', new ArrayBuffer(2)],
    ['an array', [1]],
  ])('write(%s) and end(%s) reject at once; the reply still goes out', async (_what, chunk) => {
    const { value, reply } = await inHandler(async (call) => [
      await rejectsAtOnce(call.write(chunk as never)),
      // end(null) is end(), as for Node's streams
      chunk === null ? undefined : await rejectsAtOnce(call.end(chunk as never)),
    ]);
    for (const err of value.filter((e) => e !== undefined)) expectError(err, ...TYPE, chunk);
    await until(() => Buffer.concat(reply).toString() === 'ok');
  });

  test('write and end with a view of a detached ArrayBuffer reject at once; the reply still goes out', async () => {
    const { value, reply } = await inHandler(async (call) => [
      await rejectsAtOnce(call.write(detachedView())),
      await rejectsAtOnce(call.end(detachedView())),
    ]);
    for (const err of value) expectError(err, ...VALUE, detachedView());
    await until(() => Buffer.concat(reply).toString() === 'ok');
  });

  test('write after end, and end twice: ERR_STREAM_WRITE_AFTER_END, at once', async () => {
    const { value, reply } = await inHandler(async (call) => {
      const ended = call.end(Buffer.from('done'));
      const errs = [await rejectsAtOnce(call.write(Buffer.from('x'))), await rejectsAtOnce(call.end())];
      await ended;
      return errs;
    });
    for (const err of value) expectError(err, Error, 'ERR_STREAM_WRITE_AFTER_END');
    expect(Buffer.concat(reply).toString()).toBe('done');
  });

  test.each<[string, unknown, readonly [ErrorClass, string]]>([
    ['0', 0, RANGE],
    ['2**32', 2 ** 32, RANGE],
    ['NaN', NaN, RANGE],
    ['1.5', 1.5, RANGE],
    ['"1"', '1', TYPE],
    ['null', null, TYPE],
  ])('abort(%s) throws and changes nothing: the reply still goes out', async (_what, code, [cls, errCode]) => {
    const { value, reply, id } = await inHandler(async (call) => thrown(() => call.abort(code as never)));
    expectError(value, cls, errCode, code);
    await until(() => Buffer.concat(reply).toString() === 'ok');
    expect(abortsOf(kernel, id)).toEqual([]);
  });

  test('request() after the iterator: ERR_RXRPC_REQUEST_CONSUMED, at once', async () => {
    const { value } = await inHandler(async (call) => {
      const it = call[Symbol.asyncIterator]();
      const second = await rejectsAtOnce(call.request());
      await it.next();
      return second;
    });
    expectError(value, Error, 'ERR_RXRPC_REQUEST_CONSUMED');
  });

  test('the iterator after request(): ERR_RXRPC_REQUEST_CONSUMED', async () => {
    const { value } = await inHandler(async (call) => {
      await call.request();
      return thrown(() => call[Symbol.asyncIterator]());
    });
    expectError(value, Error, 'ERR_RXRPC_REQUEST_CONSUMED');
  });

  test('a request over maxRequestBytes: request() rejects with SizeLimitError, the call is aborted', async () => {
    let seen: unknown;
    const s = serve(async (call) => {
      seen = await rejection(call.request());
    }, { maxRequestBytes: 4 });
    server = s.server;
    const { id } = s.call(Buffer.from('12345'));
    await until(() => seen !== undefined);
    expect(seen).toMatchObject({ name: 'SizeLimitError', code: 'ERR_RXRPC_TOO_LARGE', limit: 4, received: 5 });
    expect(abortsOf(kernel, id)).toEqual([RXGEN_SS_UNMARSHAL]);
  });
});

describe('bad input: Server.close(options)', () => {
  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['options null', null, TYPE, null],
    ['options a number', 100, TYPE, 100],
    ['options a string', 'now', TYPE, 'now'],
    ['options an array', [{ timeout: 0 }], TYPE, [{ timeout: 0 }]],
    ['timeout -1', { timeout: -1 }, RANGE, -1],
    ['timeout NaN', { timeout: NaN }, RANGE, NaN],
    ['timeout "100"', { timeout: '100' }, TYPE, '100'],
    ['timeout null', { timeout: null }, TYPE, null],
  ])('%s rejects at once, and the server can still be closed', async (_what, options, [cls, code], value) => {
    const { server } = serve(() => undefined);
    expectError(await rejectsAtOnce(server.close(options as never)), cls, code, value);
    expect(kernel.sockets[0].closed).toBe(false);
    await server.close({ timeout: 0 });
    expect(kernel.sockets[0].closed).toBe(true);
  });

  test('close twice gives the same promise; ref, unref and asyncDispose after close throw nothing', async () => {
    const { server } = serve(() => undefined);
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    expect(server.ref()).toBe(server);
    expect(server.unref()).toBe(server);
    await server[Symbol.asyncDispose]();
    expect(kernel.sockets[0].closed).toBe(true);
  });
});

describe('bad input: fixedModuleVersion, upgradeWarning', () => {
  test.each<[string, () => unknown, readonly [ErrorClass, string], unknown]>([
    ['fixedModuleVersion(null)', () => fixedModuleVersion(null as never), TYPE, null],
    ['fixedModuleVersion("")', () => fixedModuleVersion(''), TYPE, ''],
    ['fixedModuleVersion(a Buffer)', () => fixedModuleVersion(Buffer.from('/x') as never), TYPE, Buffer.from('/x')],
    ['upgradeWarning(null)', () => upgradeWarning(null as never), TYPE, null],
    ['upgradeWarning(6.1)', () => upgradeWarning(6.1 as never), TYPE, 6.1],
    ['upgradeWarning("6.1.0", 1)', () => upgradeWarning('6.1.0', 1 as never), TYPE, 1],
    ['upgradeWarning("6.1.0", null)', () => upgradeWarning('6.1.0', null as never), TYPE, null],
  ])('%s throws (it would read or judge the wrong thing silently)', (_what, fn, [cls, code], value) => {
    expectError(thrown(fn), cls, code, value);
  });

  test('good arguments still give their answers', () => {
    expect(fixedModuleVersion('/nonexistent/rxrpc/version')).toBeUndefined();
    expect(upgradeWarning('6.1.0-57-amd64', undefined)).toMatch(/^kernel 6\.1\.0-57-amd64: /);
    expect(upgradeWarning('6.1.0-57-amd64', 'upgrade-fix.1')).toBeUndefined();
    expect(upgradeWarning('7.4.0', undefined)).toBeUndefined();
  });
});

test('bad input: nothing in this file left an unhandled rejection, an uncaught exception or a warning', lastTest);
