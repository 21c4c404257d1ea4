/**
 * Bad input to the lower layers of the public API, RawSocket and Endpoint,
 * on the fake binding: constructor options, bind, listen, the setsockopt
 * wrappers, send / sendAsync / sendStart / sendBlocking, startCall, and use
 * after close. Every argument is checked before the native layer is called:
 * the fake kernel's log shows that nothing reached it.
 */
import { Endpoint, EndpointClosedError } from '../../lib/endpoint';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from '../../lib/errors';
import { RawSocket } from '../../lib/socket';
import { FakeKernel } from '../fake-kernel';
import {
  detachedView, ErrorClass, expectError, guardProcess, nothingSent, rejection, rejectsAtOnce, thrown, withBinding,
} from './bad-input-harness';

const lastTest = guardProcess();

const TYPE = [InvalidArgTypeError, 'ERR_INVALID_ARG_TYPE'] as const;
const RANGE = [OutOfRangeError, 'ERR_OUT_OF_RANGE'] as const;
const VALUE = [InvalidArgValueError, 'ERR_INVALID_ARG_VALUE'] as const;
const TARGET = { service: 52, address: '127.0.0.1', port: 7003 };

let kernel: FakeKernel;
beforeEach(() => {
  kernel = new FakeKernel();
});

describe('bad input: new RawSocket(options)', () => {
  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['options null', null, TYPE, null],
    ['options a string', 'IPv4', TYPE, 'IPv4'],
    ['options an array', [{ family: 'IPv6' }], TYPE, [{ family: 'IPv6' }]],
    ['family "IPX"', { family: 'IPX' }, VALUE, 'IPX'],
    ['family "ipv4"', { family: 'ipv4' }, VALUE, 'ipv4'],
    ['family 4', { family: 4 }, VALUE, 4],
    ['batch 0', { batch: 0 }, RANGE, 0],
    ['batch 1025', { batch: 1025 }, RANGE, 1025],
    ['batch 1.5', { batch: 1.5 }, RANGE, 1.5],
    ['batch "64"', { batch: '64' }, TYPE, '64'],
    ['batchBytes 1', { batchBytes: 1 }, RANGE, 1],
    ['batchBytes 2**31', { batchBytes: 2 ** 31 }, RANGE, 2 ** 31],
    ['batchBytes NaN', { batchBytes: NaN }, RANGE, NaN],
    ['family null', { family: null }, VALUE, null],
    ['batch null', { batch: null }, TYPE, null],
    ['batchBytes null', { batchBytes: null }, TYPE, null],
    ['binding a string', { binding: 'fake' }, TYPE, 'fake'],
    ['binding null', { binding: null }, TYPE, null],
  ])('%s: refused before a socket is made', (_what, options, [cls, code], value) => {
    expectError(thrown(() => new RawSocket(withBinding(options, kernel) as never)), cls, code, value);
    expect(kernel.sockets).toHaveLength(0);
  });
});

describe('bad input: RawSocket methods', () => {
  let socket: RawSocket;
  beforeEach(() => {
    socket = new RawSocket({ binding: kernel.binding });
  });
  afterEach(() => socket.close());

  type Row = [string, (s: RawSocket) => unknown, readonly [ErrorClass, string], unknown];
  test.each<Row>([
    ['bind(null)', (s) => s.bind(null as never), TYPE, null],
    ['bind("127.0.0.1")', (s) => s.bind('127.0.0.1' as never), TYPE, '127.0.0.1'],
    ['bind([52, "127.0.0.1", 7003])', (s) => s.bind([52, '127.0.0.1', 7003] as never), TYPE, [52, '127.0.0.1', 7003]],
    ['bind: service 65536', (s) => s.bind({ ...TARGET, service: 65536 }), RANGE, 65536],
    ['bind: a host name', (s) => s.bind({ ...TARGET, address: 'localhost' }), VALUE, 'localhost'],
    ['bind: port -1', (s) => s.bind({ ...TARGET, port: -1 }), RANGE, -1],
    ['listen(-1)', (s) => s.listen(-1), RANGE, -1],
    ['listen(1.5)', (s) => s.listen(1.5), RANGE, 1.5],
    ['listen(2**31)', (s) => s.listen(2 ** 31), RANGE, 2 ** 31],
    ['listen(NaN)', (s) => s.listen(NaN), RANGE, NaN],
    ['listen("5")', (s) => s.listen('5' as never), TYPE, '5'],
    ['setSecurityKey("")', (s) => s.setSecurityKey(''), VALUE, ''],
    ['setSecurityKey("a\\0b")', (s) => s.setSecurityKey('a\0b'), VALUE, 'a\0b'],
    ['setSecurityKey(5)', (s) => s.setSecurityKey(5 as never), TYPE, 5],
    ['setSecurityKey(null)', (s) => s.setSecurityKey(null as never), TYPE, null],
    ['setSecurityKeyring("")', (s) => s.setSecurityKeyring(''), VALUE, ''],
    ['setSecurityKeyring(a NUL in 100,000 characters)', (s) => s.setSecurityKeyring(`${'k'.repeat(99999)}\0`), VALUE, `${'k'.repeat(99999)}\0`],
    ['setSecurityKey(4096 bytes)', (s) => s.setSecurityKey('k'.repeat(4096)), RANGE, 'k'.repeat(4096)],
    ['setSecurityKey(100,000 characters)', (s) => s.setSecurityKey('k'.repeat(100000)), RANGE, 'k'.repeat(100000)],
    ['setSecurityKeyring(2048 two-byte characters)', (s) => s.setSecurityKeyring('é'.repeat(2048)), RANGE, 'é'.repeat(2048)],
    ['setMinSecurityLevel(3)', (s) => s.setMinSecurityLevel(3), RANGE, 3],
    ['setMinSecurityLevel(-1)', (s) => s.setMinSecurityLevel(-1), RANGE, -1],
    ['setMinSecurityLevel(1.5)', (s) => s.setMinSecurityLevel(1.5), RANGE, 1.5],
    ['setMinSecurityLevel("1")', (s) => s.setMinSecurityLevel('1' as never), TYPE, '1'],
    ['setUpgradeableService(0, 2503)', (s) => s.setUpgradeableService(0, 2503), RANGE, 0],
    ['setUpgradeableService(52, 65536)', (s) => s.setUpgradeableService(52, 65536), RANGE, 65536],
    ['setUpgradeableService("52", 2503)', (s) => s.setUpgradeableService('52' as never, 2503), TYPE, '52'],
    ['sendBufferSize = 0', (s) => (s.sendBufferSize = 0), RANGE, 0],
    ['sendBufferSize = 2**31', (s) => (s.sendBufferSize = 2 ** 31), RANGE, 2 ** 31],
    ['sendBufferSize = "1"', (s) => (s.sendBufferSize = '1' as never), TYPE, '1'],
    ['receiveBufferSize = -1', (s) => (s.receiveBufferSize = -1), RANGE, -1],
    ['receiveBufferSize = 1.5', (s) => (s.receiveBufferSize = 1.5), RANGE, 1.5],
  ])('%s throws before any system call', (_what, fn, [cls, code], value) => {
    const native = kernel.sockets[0];
    expectError(thrown(() => fn(socket)), cls, code, value);
    expect(native.bound).toEqual([]);
  });

  type Send = [string, unknown, unknown, unknown, readonly [ErrorClass, string], unknown];
  const badSends: Send[] = [
    ['control null', null, Buffer.from('x'), {}, TYPE, null],
    ['control a number', 7, Buffer.from('x'), {}, TYPE, 7],
    ['control an array', [{ callId: 1 }], Buffer.from('x'), {}, TYPE, [{ callId: 1 }]],
    ['callId -1', { callId: -1 }, Buffer.from('x'), {}, RANGE, -1],
    ['callId 2**53', { callId: 2 ** 53 }, Buffer.from('x'), {}, RANGE, 2 ** 53],
    ['abort 0', { callId: 1, abort: 0 }, undefined, {}, RANGE, 0],
    ['timeouts [1.5]', { callId: 1, timeouts: [1.5] }, Buffer.from('x'), {}, RANGE, 1.5],
    // Flags the reused control buffers could take for "left out" or "true": they must be refused instead.
    ['chargeAccept "yes"', { callId: 1, chargeAccept: 'yes' }, undefined, {}, TYPE, 'yes'],
    ['chargeAccept 1', { callId: 1, chargeAccept: 1 }, undefined, {}, TYPE, 1],
    ['exclusive 0', { callId: 1, exclusive: 0 }, Buffer.from('x'), {}, TYPE, 0],
    ['upgrade null', { callId: 1, upgrade: null }, Buffer.from('x'), {}, TYPE, null],
    ['data a string', { callId: 1 }, 'text', {}, TYPE, 'text'],
    ['data a number', { callId: 1 }, 5, {}, TYPE, 5],
    ['data a Uint16Array', { callId: 1 }, new Uint16Array(2), {}, TYPE, new Uint16Array(2)],
    ['data an ArrayBuffer', { callId: 1 }, new ArrayBuffer(2), {}, TYPE, new ArrayBuffer(2)],
    ['data an array', { callId: 1 }, [1, 2], {}, TYPE, [1, 2]],
    ['data a view of a detached ArrayBuffer', { callId: 1 }, detachedView(), {}, VALUE, detachedView()],
    ['options null', { callId: 1 }, Buffer.from('x'), null, TYPE, null],
    ['options a string', { callId: 1 }, Buffer.from('x'), 'more', TYPE, 'more'],
    ['options an array', { callId: 1 }, Buffer.from('x'), [{ more: true }], TYPE, [{ more: true }]],
    ['a target with service 65536', { callId: 1 }, Buffer.from('x'), { target: { ...TARGET, service: 65536 } }, RANGE, 65536],
    ['a target with a host name', { callId: 1 }, Buffer.from('x'), { target: { ...TARGET, address: 'localhost' } }, VALUE, 'localhost'],
    ['a target that is a string', { callId: 1 }, Buffer.from('x'), { target: '127.0.0.1' }, TYPE, '127.0.0.1'],
    ['a target that is null', { callId: 1 }, Buffer.from('x'), { target: null }, TYPE, null],
    ['more "no"', { callId: 1 }, Buffer.from('x'), { more: 'no' }, TYPE, 'no'],
    ['more 1', { callId: 1 }, Buffer.from('x'), { more: 1 }, TYPE, 1],
  ];

  test.each(badSends)('send: %s throws; nothing reaches the kernel', (_what, control, data, options, [cls, code], value) => {
    expectError(thrown(() => socket.send(control as never, data as never, options as never)), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
  });

  test.each(badSends)('sendAsync: %s returns a promise that rejects at once; nothing reaches the kernel', async (_what, control, data, options, [cls, code], value) => {
    let sent: unknown;
    expect(() => (sent = socket.sendAsync(control as never, data as never, options as never))).not.toThrow();
    expectError(await rejectsAtOnce(sent), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
  });

  test.each(badSends)('sendStart: %s throws; nothing reaches the kernel', (_what, control, data, options, [cls, code], value) => {
    expectError(thrown(() => socket.sendStart(control as never, data as never, options as never)), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
  });

  test.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'bulk'],
    ['a Uint16Array', new Uint16Array(4)],
    ['a view of a detached ArrayBuffer', detachedView()],
  ])('sendBlocking with data %s throws; nothing reaches the kernel', (_what, data) => {
    const [cls, code]: readonly [ErrorClass, string] = data instanceof Uint8Array ? VALUE : TYPE;
    expectError(thrown(() => socket.sendBlocking({ callId: 1 }, data as never)), cls, code, data);
    expect(nothingSent(kernel)).toBe(true);
  });

  test('after close: send throws, sendAsync and the sends on threads reject, all with ERR_SOCKET_CLOSED', async () => {
    socket.close();
    socket.close();
    expectError(thrown(() => socket.send({ callId: 1 }, Buffer.from('x'))), Error, 'ERR_SOCKET_CLOSED');
    expectError(await rejectsAtOnce(socket.sendAsync({ callId: 1 }, Buffer.from('x'), { target: TARGET })), Error, 'ERR_SOCKET_CLOSED');
    expectError(await rejectsAtOnce(socket.sendStart({ callId: 1 }, Buffer.from('x')).sent), Error, 'ERR_SOCKET_CLOSED');
    const blocking = socket.sendBlocking({ callId: 1 }, Buffer.from('x'));
    expectError(await rejectsAtOnce(blocking.sent), Error, 'ERR_SOCKET_CLOSED');
    expect(blocking.interrupt()).toBe(false);
    expect(socket.ref()).toBe(socket);
    expect(socket.unref()).toBe(socket);
    expect(nothingSent(kernel)).toBe(true);
  });

  test('closing with sends on threads rejects each with ERR_SOCKET_CLOSED', async () => {
    kernel.startHangs.add(`${TARGET.address}|${TARGET.port}`);
    const start = socket.sendStart({ callId: 1 }, Buffer.from('x'), { target: TARGET });
    const bulk = socket.sendBlocking({ callId: 2 }, Buffer.alloc(100));
    socket.close();
    expectError(await rejection(start.sent), Error, 'ERR_SOCKET_CLOSED');
    expectError(await rejection(bulk.sent), Error, 'ERR_SOCKET_CLOSED');
  });
});

describe('bad input: new Endpoint(options)', () => {
  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['options null', null, TYPE, null],
    ['options a number', 1, TYPE, 1],
    ['options an array', [{ batch: 4 }], TYPE, [{ batch: 4 }]],
    ['socket a string', { socket: 'raw' }, TYPE, 'raw'],
    ['socket a plain object', { socket: { send() {} } }, TYPE, { send() {} }],
    ['family "IPv5"', { family: 'IPv5' }, VALUE, 'IPv5'],
    ['batch 0', { batch: 0 }, RANGE, 0],
  ])('new Endpoint(%s): refused before a socket is made', (_what, options, [cls, code], value) => {
    expectError(thrown(() => new Endpoint(withBinding(options, kernel) as never)), cls, code, value);
    expect(kernel.sockets).toHaveLength(0);
  });
});

describe('bad input: Endpoint', () => {
  let ep: Endpoint;
  beforeEach(() => {
    ep = new Endpoint({ binding: kernel.binding });
  });
  afterEach(() => ep.close());

  test.each<[string, unknown, readonly [ErrorClass, string]]>([
    ['0', 0, RANGE],
    ['1001', 1001, RANGE],
    ['1.5', 1.5, RANGE],
    ['NaN', NaN, RANGE],
    ['"8"', '8', TYPE],
    ['null', null, TYPE],
  ])('listen(%s) throws; no accept charge is sent', (_what, backlog, [cls, code]) => {
    expectError(thrown(() => ep.listen(backlog as never)), cls, code, backlog);
    expect(nothingSent(kernel)).toBe(true);
  });

  type Start = [string, unknown, unknown, unknown, unknown, readonly [ErrorClass, string], unknown];
  test.each<Start>([
    ['target a string', '127.0.0.1:7003', Buffer.from('x'), false, {}, TYPE, '127.0.0.1:7003'],
    ['target null', null, Buffer.from('x'), false, {}, TYPE, null],
    ['target an array', [52, '127.0.0.1', 7003], Buffer.from('x'), false, {}, TYPE, [52, '127.0.0.1', 7003]],
    ['target undefined', undefined, Buffer.from('x'), false, {}, TYPE, undefined],
    ['target with a host name', { ...TARGET, address: 'localhost' }, Buffer.from('x'), false, {}, VALUE, 'localhost'],
    ['target with service 65536', { ...TARGET, service: 65536 }, Buffer.from('x'), false, {}, RANGE, 65536],
    ['target with port 1.5', { ...TARGET, port: 1.5 }, Buffer.from('x'), false, {}, RANGE, 1.5],
    ['first null', TARGET, null, false, {}, TYPE, null],
    ['first a string', TARGET, 'hello', false, {}, TYPE, 'hello'],
    ['first a Uint16Array', TARGET, new Uint16Array(1), false, {}, TYPE, new Uint16Array(1)],
    ['first a view of a detached ArrayBuffer', TARGET, detachedView(), false, {}, VALUE, detachedView()],
    ['more "yes"', TARGET, Buffer.from('x'), 'yes', {}, TYPE, 'yes'],
    ['more undefined', TARGET, Buffer.from('x'), undefined, {}, TYPE, undefined],
    ['more 1', TARGET, Buffer.from('x'), 1, {}, TYPE, 1],
    ['options null', TARGET, Buffer.from('x'), false, null, TYPE, null],
    ['options an array', TARGET, Buffer.from('x'), false, [{ upgrade: true }], TYPE, [{ upgrade: true }]],
    ['upgrade "yes"', TARGET, Buffer.from('x'), false, { upgrade: 'yes' }, TYPE, 'yes'],
    ['exclusive 1', TARGET, Buffer.from('x'), false, { exclusive: 1 }, TYPE, 1],
    ['kernelTimeouts [1.5]', TARGET, Buffer.from('x'), false, { kernelTimeouts: [1.5] }, RANGE, 1.5],
    ['kernelTimeouts a string', TARGET, Buffer.from('x'), false, { kernelTimeouts: '5' }, VALUE, '5'],
    ['txLength -1', TARGET, Buffer.from('x'), false, { txLength: -1 }, RANGE, -1],
    ['txLength "1"', TARGET, Buffer.from('x'), false, { txLength: '1' }, TYPE, '1'],
  ])('startCall: %s throws before the call exists; nothing is sent', (_what, target, first, more, options, [cls, code], value) => {
    expectError(thrown(() => ep.startCall(target as never, first as never, more as never, options as never)), cls, code, value);
    expect(ep.activeCalls).toBe(0);
    expect(nothingSent(kernel)).toBe(true);
  });

  test.each<[string, unknown, readonly [ErrorClass, string]]>([
    ['0', 0, RANGE],
    ['2**32', 2 ** 32, RANGE],
    ['NaN', NaN, RANGE],
    ['"1"', '1', TYPE],
  ])('Call.abort(%s) throws and the call goes on', async (_what, code, [cls, errCode]) => {
    kernel.peer(TARGET.address, TARGET.port, () => ({ reply: Buffer.from('ok') }));
    const call = ep.startCall(TARGET, Buffer.from('x'), true);
    const done = new Promise<Error | undefined>((resolve) => (call.ondone = resolve));
    expectError(thrown(() => call.abort(code as never)), cls, errCode, code);
    call.write(Buffer.from('y'), false);
    await expect(done).resolves.toBeUndefined();
    expect(kernel.sent.some((s) => s.abort !== undefined)).toBe(false);
  });

  test.each<[string, unknown]>([
    ['a string', 'more'],
    ['null', null],
    ['a Uint16Array', new Uint16Array(1)],
    ['a view of a detached ArrayBuffer', detachedView()],
  ])('Call.write(%s) throws and the call goes on', async (_what, data) => {
    kernel.peer(TARGET.address, TARGET.port, () => ({ reply: Buffer.from('ok') }));
    const call = ep.startCall(TARGET, Buffer.from('x'), true);
    const done = new Promise<Error | undefined>((resolve) => (call.ondone = resolve));
    const [cls, code]: readonly [ErrorClass, string] = data instanceof Uint8Array ? VALUE : TYPE;
    expectError(thrown(() => call.write(data as never, false)), cls, code, data);
    call.write(Buffer.from('y'), false);
    await expect(done).resolves.toBeUndefined();
  });

  test.each<[string, unknown]>([
    ['"no"', 'no'],
    ['undefined', undefined],
    ['1', 1],
  ])('Call.write(data, %s) throws before queueing anything, and the call goes on', async (_what, more) => {
    const got: Buffer[] = [];
    kernel.peer(TARGET.address, TARGET.port, ({ data }) => (got.push(data), { reply: Buffer.from('ok') }));
    const call = ep.startCall(TARGET, Buffer.from('x'), true);
    const done = new Promise<Error | undefined>((resolve) => (call.ondone = resolve));
    expectError(thrown(() => call.write(Buffer.from('lost'), more as never)), ...TYPE, more);
    call.write(Buffer.from('y'), false);
    await expect(done).resolves.toBeUndefined();
    expect(got.map(String)).toEqual(['xy']);
  });

  test('after close: listen and startCall throw ERR_SOCKET_CLOSED; a second close does nothing', () => {
    ep.close();
    ep.close();
    expectError(thrown(() => ep.listen(4)), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    expectError(thrown(() => ep.startCall(TARGET, Buffer.from('x'), false)), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    expect(nothingSent(kernel)).toBe(true);
  });

  test('closing with a call in flight ends it with ERR_SOCKET_CLOSED', async () => {
    kernel.peer(TARGET.address, TARGET.port, () => ({ silent: true }));
    const call = ep.startCall(TARGET, Buffer.from('x'), false);
    const done = new Promise<Error | undefined>((resolve) => (call.ondone = resolve));
    ep.close();
    expectError(await done, EndpointClosedError, 'ERR_SOCKET_CLOSED');
  });
});

test('bad input: nothing in this file left an unhandled rejection, an uncaught exception or a warning', lastTest);
