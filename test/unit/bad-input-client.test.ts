/**
 * Bad input to the client side of the public API: Client (options, call,
 * openCall, probe, learnedService, forget, ref/unref, close), ClientCall
 * (write, end, abort, iteration) and the AFS probe helpers, on the fake
 * kernel. Each case checks the error's class, code and message, that nothing
 * reached the kernel when the input was refused, and that every promise
 * settles.
 */
import { EventEmitter } from 'node:events';
import { capabilitiesRequest, decodeCapabilities, probeFS, probeVL } from '../../lib/afs';
import { Client, ClientCall } from '../../lib/client';
import { RX_CALL_TIMEOUT, RX_USER_ABORT, RXGEN_OPCODE } from '../../lib/constants';
import { EndpointClosedError } from '../../lib/endpoint';
import {
  InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError, RxAbortError, TimeoutError,
} from '../../lib/errors';
import { FakeKernel } from '../fake-kernel';
import {
  detachedView, ErrorClass, expectError, guardProcess, NO_VALUE, nothingSent, rejection, rejectsAtOnce, revokedProxy, thrown, throwingGetters, turn,
  until,
} from './bad-input-harness';

const lastTest = guardProcess();

const PEER = { address: '127.0.0.1', port: 17003 };
const DEST = { ...PEER, service: 52 };
const TYPE = [InvalidArgTypeError, 'ERR_INVALID_ARG_TYPE'] as const;
const RANGE = [OutOfRangeError, 'ERR_OUT_OF_RANGE'] as const;
const VALUE = [InvalidArgValueError, 'ERR_INVALID_ARG_VALUE'] as const;

let kernel: FakeKernel;
let client: Client;
beforeEach(() => {
  kernel = new FakeKernel();
  kernel.peer(PEER.address, PEER.port, ({ data }) => ({ reply: Buffer.from(`got ${data.length}`) }));
  client = new Client({ binding: kernel.binding, maxCallsPerPeer: 1 });
});
afterEach(() => client.close());

/** With one call slot per peer, a slot leaked by a failed call would make this wait for ever. */
async function stillServes(c: Client = client): Promise<void> {
  await expect(c.call(DEST, Buffer.from('next'))).resolves.toMatchObject({ data: Buffer.from('got 4'), service: 52 });
}

describe('bad input: new Client(options)', () => {
  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['options null', null, TYPE, null],
    ['options a string', 'fast', TYPE, 'fast'],
    ['options a number', 42, TYPE, 42],
    ['options a function', () => {}, TYPE, NO_VALUE],
    ['options an array of options', [{ maxCallsPerPeer: 1 }], TYPE, [{ maxCallsPerPeer: 1 }]],
    ['maxCallsPerPeer 0', { maxCallsPerPeer: 0 }, RANGE, 0],
    ['maxCallsPerPeer 1001', { maxCallsPerPeer: 1001 }, RANGE, 1001],
    ['maxCallsPerPeer 1.5', { maxCallsPerPeer: 1.5 }, RANGE, 1.5],
    ['maxCallsPerPeer NaN', { maxCallsPerPeer: NaN }, RANGE, NaN],
    ['maxCallsPerPeer Infinity', { maxCallsPerPeer: Infinity }, RANGE, Infinity],
    ['maxCallsPerPeer 2**53', { maxCallsPerPeer: 2 ** 53 }, RANGE, 2 ** 53],
    ['maxCallsPerPeer "8"', { maxCallsPerPeer: '8' }, TYPE, '8'],
    ['maxCallsPerPeer null', { maxCallsPerPeer: null }, TYPE, null],
    ['maxReplyBytes -1', { maxReplyBytes: -1 }, RANGE, -1],
    ['maxReplyBytes 1.5', { maxReplyBytes: 1.5 }, RANGE, 1.5],
    ['maxReplyBytes NaN', { maxReplyBytes: NaN }, RANGE, NaN],
    ['maxReplyBytes -Infinity', { maxReplyBytes: -Infinity }, RANGE, -Infinity],
    ['maxReplyBytes "4096"', { maxReplyBytes: '4096' }, TYPE, '4096'],
    ['isolateServices "false"', { isolateServices: 'false' }, TYPE, 'false'],
    ['isolateServices 0', { isolateServices: 0 }, TYPE, 0],
    ['isolateServices null', { isolateServices: null }, TYPE, null],
    ['batch 0', { batch: 0 }, RANGE, 0],
    ['batch 1025', { batch: 1025 }, RANGE, 1025],
    ['batch 0.5', { batch: 0.5 }, RANGE, 0.5],
    ['batch "64"', { batch: '64' }, TYPE, '64'],
    ['binding a string', { binding: 'fake' }, TYPE, 'fake'],
    ['binding null', { binding: null }, TYPE, null],
  ])('%s', (_what, options, [cls, code], value) => {
    expectError(thrown(() => new Client(options as never)), cls, code, value);
  });

  test('an option whose getter throws: that error, unchanged', () => {
    const boom = new Error('getter');
    expect(thrown(() => new Client(throwingGetters(boom) as never))).toBe(boom);
  });
});

const badDestinations: Array<[string, unknown, readonly [ErrorClass, string], unknown, string]> = [
  ['destination null', null, TYPE, null, 'destination'],
  ['destination undefined', undefined, TYPE, undefined, 'destination'],
  ['destination a string', '127.0.0.1:17003', TYPE, '127.0.0.1:17003', 'destination'],
  ['destination a number', 17003, TYPE, 17003, 'destination'],
  ['destination an array', ['127.0.0.1', 17003, 52], TYPE, ['127.0.0.1', 17003, 52], 'destination'],
  ['a host name', { ...DEST, address: 'localhost' }, VALUE, 'localhost', 'destination.address'],
  ['an empty address', { ...DEST, address: '' }, VALUE, '', 'destination.address'],
  ['a leading space', { ...DEST, address: ' 127.0.0.1' }, VALUE, ' 127.0.0.1', 'destination.address'],
  ['a trailing space', { ...DEST, address: '127.0.0.1 ' }, VALUE, '127.0.0.1 ', 'destination.address'],
  ['an IPv6 zone', { ...DEST, address: 'fe80::1%eth0' }, VALUE, 'fe80::1%eth0', 'destination.address'],
  ['IPv4-mapped IPv6', { ...DEST, address: '::ffff:127.0.0.1' }, VALUE, '::ffff:127.0.0.1', 'destination.address'],
  ['IPv4-mapped IPv6 in hex', { ...DEST, address: '::ffff:7f00:1' }, VALUE, '::ffff:7f00:1', 'destination.address'],
  ['IPv4-mapped IPv6 in full', { ...DEST, address: '0:0:0:0:0:ffff:127.0.0.1' }, VALUE, '0:0:0:0:0:ffff:127.0.0.1', 'destination.address'],
  ['an address with a NUL', { ...DEST, address: '127.0.0.1\0' }, VALUE, '127.0.0.1\0', 'destination.address'],
  ['a 100,000-character address', { ...DEST, address: '1'.repeat(100000) }, VALUE, '1'.repeat(100000), 'destination.address'],
  ['five octets', { ...DEST, address: '1.2.3.4.5' }, VALUE, '1.2.3.4.5', 'destination.address'],
  ['an octet over 255', { ...DEST, address: '256.0.0.1' }, VALUE, '256.0.0.1', 'destination.address'],
  ['an address as a number', { ...DEST, address: 0x7f000001 }, TYPE, 0x7f000001, 'destination.address'],
  ['a boxed address', { ...DEST, address: new String('127.0.0.1') }, TYPE, new String('127.0.0.1'), 'destination.address'],
  ['a symbol address', { ...DEST, address: Symbol('peer') }, TYPE, Symbol('peer'), 'destination.address'],
  ['no address', { port: 17003, service: 52 }, TYPE, undefined, 'destination.address'],
  ['port 0', { ...DEST, port: 0 }, RANGE, 0, 'destination.port'],
  ['port 65536', { ...DEST, port: 65536 }, RANGE, 65536, 'destination.port'],
  ['port -1', { ...DEST, port: -1 }, RANGE, -1, 'destination.port'],
  ['port 1.5', { ...DEST, port: 1.5 }, RANGE, 1.5, 'destination.port'],
  ['port NaN', { ...DEST, port: NaN }, RANGE, NaN, 'destination.port'],
  ['port Infinity', { ...DEST, port: Infinity }, RANGE, Infinity, 'destination.port'],
  ['port "17003"', { ...DEST, port: '17003' }, TYPE, '17003', 'destination.port'],
  ['port 17003n', { ...DEST, port: 17003n }, TYPE, 17003n, 'destination.port'],
  ['port null', { ...DEST, port: null }, TYPE, null, 'destination.port'],
  ['service 0', { ...DEST, service: 0 }, RANGE, 0, 'destination.service'],
  ['service 65536', { ...DEST, service: 65536 }, RANGE, 65536, 'destination.service'],
  ['service -1', { ...DEST, service: -1 }, RANGE, -1, 'destination.service'],
  ['service 52.5', { ...DEST, service: 52.5 }, RANGE, 52.5, 'destination.service'],
  ['service "52"', { ...DEST, service: '52' }, TYPE, '52', 'destination.service'],
  ['no service', { ...PEER }, TYPE, undefined, 'destination.service'],
];

describe('bad input: destinations (openCall throws, call rejects, nothing is sent)', () => {
  test.each(badDestinations)('openCall: %s', (_what, destination, [cls, code], value, argument) => {
    const err = expectError(thrown(() => client.openCall(destination as never)), cls, code, value);
    expect(err.message).toContain(`"${argument}"`);
    expect(kernel.sockets).toHaveLength(0);
  });

  test.each(badDestinations.filter((_, i) => i % 4 === 0))('call: %s', async (_what, destination, [cls, code], value) => {
    expectError(await rejectsAtOnce(client.call(destination as never, Buffer.from('x'))), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
  });
});

const badCallOptions: Array<[string, unknown, readonly [ErrorClass, string], unknown]> = [
  ['options null', null, TYPE, null],
  ['options a string', 'fast', TYPE, 'fast'],
  ['options a number', 5000, TYPE, 5000],
  ['options an array of options', [{ timeout: 5 }], TYPE, [{ timeout: 5 }]],
  ['timeout -1', { timeout: -1 }, RANGE, -1],
  ['timeout NaN', { timeout: NaN }, RANGE, NaN],
  ['timeout -Infinity', { timeout: -Infinity }, RANGE, -Infinity],
  ['timeout "100"', { timeout: '100' }, TYPE, '100'],
  ['timeout null', { timeout: null }, TYPE, null],
  ['timeout 100n', { timeout: 100n }, TYPE, 100n],
  ['deadline an invalid Date', { deadline: new Date('no such day') }, VALUE, new Date(NaN)],
  ['deadline NaN', { deadline: NaN }, RANGE, NaN],
  ['deadline a string', { deadline: '2030-01-01' }, TYPE, '2030-01-01'],
  ['deadline null', { deadline: null }, TYPE, null],
  ['deadline true', { deadline: true }, TYPE, true],
  ['signal a plain object', { signal: { aborted: false } }, TYPE, { aborted: false }],
  ['signal a string', { signal: 'abort' }, TYPE, 'abort'],
  ['signal an AbortController', { signal: new AbortController() }, TYPE, NO_VALUE],
  ['signal an EventTarget', { signal: new EventTarget() }, TYPE, NO_VALUE],
  ['signal null', { signal: null }, TYPE, null],
  ['exclusive "yes"', { exclusive: 'yes' }, TYPE, 'yes'],
  ['exclusive 1', { exclusive: 1 }, TYPE, 1],
  ['useLearnedService "no"', { useLearnedService: 'no' }, TYPE, 'no'],
  ['useLearnedService 0', { useLearnedService: 0 }, TYPE, 0],
  ['kernelTimeouts null', { kernelTimeouts: null }, TYPE, null],
  ['kernelTimeouts a string', { kernelTimeouts: 'soon' }, TYPE, 'soon'],
  ['kernelTimeouts an array', { kernelTimeouts: [5, 1000, 1000] }, TYPE, [5, 1000, 1000]],
  ['kernelTimeouts.hard -1', { kernelTimeouts: { hard: -1 } }, RANGE, -1],
  ['kernelTimeouts.hard 1.5', { kernelTimeouts: { hard: 1.5 } }, RANGE, 1.5],
  ['kernelTimeouts.hard 2147484', { kernelTimeouts: { hard: 2147484 } }, RANGE, 2147484],
  ['kernelTimeouts.idle -1', { kernelTimeouts: { idle: -1 } }, RANGE, -1],
  ['kernelTimeouts.idle 3600001', { kernelTimeouts: { idle: 3600001 } }, RANGE, 3600001],
  ['kernelTimeouts.normal NaN', { kernelTimeouts: { normal: NaN } }, RANGE, NaN],
  ['kernelTimeouts.normal Infinity', { kernelTimeouts: { normal: Infinity } }, RANGE, Infinity],
  ['kernelTimeouts.hard "5"', { kernelTimeouts: { hard: '5' } }, TYPE, '5'],
  ['kernelTimeouts.idle null', { kernelTimeouts: { idle: null } }, TYPE, null],
  ['kernelTimeouts.normal 5n', { kernelTimeouts: { normal: 5n } }, TYPE, 5n],
  ['maxReplyBytes -1', { maxReplyBytes: -1 }, RANGE, -1],
  ['maxReplyBytes 1.5', { maxReplyBytes: 1.5 }, RANGE, 1.5],
  ['maxReplyBytes "1"', { maxReplyBytes: '1' }, TYPE, '1'],
];

describe('bad input: call options (openCall throws, call rejects, nothing is sent)', () => {
  test.each(badCallOptions)('openCall: %s', (_what, options, [cls, code], value) => {
    expectError(thrown(() => client.openCall(DEST, options as never)), cls, code, value);
    expect(kernel.sockets).toHaveLength(0);
  });

  test.each(badCallOptions.filter((_, i) => i % 3 === 0))('call: %s', async (_what, options, [cls, code], value) => {
    expectError(await rejectsAtOnce(client.call(DEST, Buffer.from('x'), options as never)), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
  });

  test('a signal that is a Proxy whose traps throw: the TypeError names it, the traps never run', () => {
    const err = expectError(thrown(() => client.openCall(DEST, { signal: throwingGetters(new Error('trap')) as never })), ...TYPE, NO_VALUE,
      'Received Proxy');
    expect(err.message).toContain('"options.signal"');
  });

  test('a revoked Proxy as signal: V8\'s own TypeError from looking at it, synchronously, and nothing is sent', () => {
    // V8 makes it in the realm the Proxy came from: compare the name.
    expect(thrown(() => client.openCall(DEST, { signal: revokedProxy() as never }))).toMatchObject({ name: 'TypeError', message: expect.stringContaining('revoked') });
    expect(kernel.sockets).toHaveLength(0);
  });

  test('port -0 and a boxed port are named as such', () => {
    expectError(thrown(() => client.openCall({ ...DEST, port: -0 })), ...RANGE, NO_VALUE, 'Received -0');
    expectError(thrown(() => client.openCall({ ...DEST, port: new Number(17003) as never })), ...TYPE, NO_VALUE, 'Received [Number: 17003]');
  });

  test('an option getter that throws: that error, and nothing is sent', async () => {
    const boom = new Error('getter');
    const options = { get timeout(): number { throw boom; } };
    expect(thrown(() => client.openCall(DEST, options))).toBe(boom);
    await expect(client.call(DEST, Buffer.from('x'), options)).rejects.toBe(boom);
    expect(nothingSent(kernel)).toBe(true);
  });
});

describe('bad input: the request of Client.call', () => {
  const WHAT = 'a Uint8Array or an (async) iterable of Uint8Array';
  test.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a string (iterable, but of characters)', 'hello'],
    ['a number', 42],
    ['a boolean', true],
    ['a plain object', { data: 'x' }],
    ['a symbol', Symbol('request')],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))],
    ['an object whose Symbol.iterator is not a function', { [Symbol.iterator]: 5 }],
  ])('%s is refused at once and nothing is sent', async (_what, request) => {
    const err = expectError(await rejectsAtOnce(client.call(DEST, request as never)), ...TYPE, request);
    expect(err.message).toContain(WHAT);
    expect(nothingSent(kernel)).toBe(true);
    await stillServes();
  });

  test('an iterable whose iterator has no next() is refused, naming the iterator', async () => {
    const err = expectError(await rejectsAtOnce(client.call(DEST, { [Symbol.iterator]: () => ({}) } as never)), ...TYPE, {});
    expect(err.message).toContain('its iterator has no next()');
    await stillServes();
  });

  test.each<[string, unknown]>([
    ['a string', 'text'],
    ['a number', 5],
    ['null', null],
    ['a Uint16Array', new Uint16Array(2)],
    ['an array of bytes', [1, 2, 3]],
  ])('an iterable yielding %s: a TypeError naming the chunk, and the slot is freed', async (_what, chunk) => {
    async function* source() {
      yield Buffer.from('ok');
      yield chunk;
    }
    const err = expectError(await rejection(client.call(DEST, source() as never)), ...TYPE, chunk);
    expect(err.message).toContain('"request chunk"');
    await stillServes();
  });

  test.each<[string, unknown]>([
    ['a string', 'source broke'],
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a plain object', { reason: 'x' }],
    ['an Error', new Error('source broke')],
  ])('a source throwing %s: the call rejects with exactly that, and its slot is freed', async (_what, value) => {
    function* source(): Generator<Uint8Array> {
      yield Buffer.from('part');
      throw value;
    }
    expect(await rejection(client.call(DEST, source()))).toBe(value);
    await stillServes();
  });

  test.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 5],
    ['a string', 'done'],
  ])('an iterator whose next() returns %s: a TypeError naming it, the source is stopped, and the slot is freed', async (_what, result) => {
    const stopped = jest.fn();
    const source = { [Symbol.iterator]: () => ({ next: () => result, return: () => (stopped(), { done: true, value: undefined }) }) };
    const err = expectError(await rejection(client.call(DEST, source as never)), ...TYPE, result);
    expect(err.message).toContain('"request iterator result"');
    expect(stopped).toHaveBeenCalledTimes(1);
    await stillServes();
  });

  test('an iterator result whose getters throw: that error, and the slot is freed', async () => {
    const boom = new Error('done getter');
    const source = { [Symbol.iterator]: () => ({ next: () => ({ get done(): boolean { throw boom; } }) }) };
    expect(await rejection(client.call(DEST, source as never))).toBe(boom);
    await stillServes();
  });

  test.each<[string, unknown]>([
    ['an object without a prototype', Object.create(null)],
    ['an object whose toString throws', { toString() { throw new Error('no string'); } }],
    ['a Proxy whose traps throw', new Proxy({}, { get() { throw new Error('trap'); } })],
  ])('a source throwing %s (it cannot be made a string): rejects with it, and its slot is freed', async (_what, value) => {
    async function* source(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('part');
      throw value;
    }
    // Not through rejection(): an async function returning the Proxy would look up its `then`.
    await expect(client.call(DEST, source())).rejects.toBe(value);
    await stillServes();
  });

  test('an async source rejecting after the call has started: the call is aborted on the wire', async () => {
    kernel.window = 0; // the first part stays queued: the call exists in the kernel, unfinished
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* source() {
      yield Buffer.from('part');
      await gate;
      throw new Error('later');
    }
    const pending = client.call(DEST, source());
    await until(() => kernel.requests.length === 1);
    release();
    await expect(pending).rejects.toThrow('later');
    expect(kernel.sent.filter((s) => s.abort !== undefined).map((s) => s.abort)).toEqual([RX_USER_ABORT]);
  });

  describe('a source that stops yielding after its first chunk', () => {
    /** An async source whose second next() never settles. */
    const stalled = (): AsyncIterable<Uint8Array> => ({
      [Symbol.asyncIterator]: () => {
        let n = 0;
        return { next: () => (n++ === 0 ? Promise.resolve({ value: Buffer.from('part'), done: false }) : new Promise(() => {})) };
      },
    });

    test('with a timeout: the call rejects with TimeoutError, is aborted on the wire, and its slot is freed', async () => {
      expectError(await rejection(client.call(DEST, stalled(), { timeout: 20 })), TimeoutError, 'ETIMEDOUT');
      expect(kernel.sent.filter((s) => s.abort !== undefined).map((s) => s.abort)).toEqual([RX_CALL_TIMEOUT]);
      await stillServes();
    });

    test('with a signal: the call rejects with AbortError when it fires', async () => {
      const controller = new AbortController();
      const pending = client.call(DEST, stalled(), { signal: controller.signal });
      await until(() => kernel.requests.length === 1);
      controller.abort();
      expect(await rejection(pending)).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      await stillServes();
    });

    test('when the client closes: the call rejects with ERR_SOCKET_CLOSED', async () => {
      const pending = client.call(DEST, stalled());
      await until(() => kernel.requests.length === 1);
      client.close();
      expectError(await rejection(pending), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    });
  });

  test('an endless source with a timeout: the call times out and the source is told to stop', async () => {
    kernel.window = 0; // nothing is taken: every write waits on the call's retry timer
    const returned = jest.fn();
    const source: Iterable<Uint8Array> = {
      [Symbol.iterator]: () => ({ next: () => ({ value: Buffer.alloc(100), done: false }), return: () => (returned(), { value: undefined, done: true }) }),
    };
    expectError(await rejection(client.call(DEST, source, { timeout: 20 })), TimeoutError, 'ETIMEDOUT', NO_VALUE);
    expect(returned).toHaveBeenCalledTimes(1);
  });
});

describe('bad input: views of a detached ArrayBuffer (their bytes were transferred away)', () => {
  test('as the request of Client.call: refused at once, nothing is sent (it would go out empty)', async () => {
    const view = detachedView();
    const err = expectError(await rejectsAtOnce(client.call(DEST, view)), ...VALUE, view);
    expect(err.message).toContain('detached ArrayBuffer');
    expect(nothingSent(kernel)).toBe(true);
  });

  test('yielded by a request source: refused, and the slot is freed', async () => {
    const view = detachedView();
    async function* source() {
      yield Buffer.from('ok');
      yield view;
    }
    expectError(await rejection(client.call(DEST, source())), ...VALUE, view);
    await stillServes();
  });

  test('written to, or ending, a ClientCall: refused at once; the call goes on', async () => {
    const call = client.openCall(DEST);
    expectError(await rejectsAtOnce(call.write(detachedView())), ...VALUE, detachedView());
    expectError(await rejectsAtOnce(call.end(detachedView())), ...VALUE, detachedView());
    await call.end(Buffer.from('fine'));
    await expect(call.result).resolves.toMatchObject({ service: 52 });
    expect(kernel.requests.map((s) => s.bytes)).toEqual([4]);
  });

  test('as a probe request: refused at once, nothing is sent or learned', async () => {
    expectError(await rejectsAtOnce(client.probe(PEER, { service: 52, request: detachedView() })), ...VALUE, detachedView());
    expect(nothingSent(kernel)).toBe(true);
    expect(client.learnedService(PEER, 52)).toBeUndefined();
  });

  test('as a reply to decode: refused, not read as an empty reply', () => {
    expectError(thrown(() => decodeCapabilities(detachedView())), ...VALUE, detachedView());
  });
});

describe('bad input: ClientCall', () => {
  let call: ClientCall;
  beforeEach(() => {
    call = client.openCall(DEST);
  });

  /** The call still works after the refused input. */
  async function stillWorks(): Promise<void> {
    await call.end(Buffer.from('fine'));
    await expect(call.result).resolves.toMatchObject({ service: 52 });
    const chunks: Buffer[] = [];
    for await (const c of call) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('got 4');
  }

  test.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'text'],
    ['a number', 42],
    ['an array', [1, 2]],
    ['a Uint16Array', new Uint16Array(2)],
    ['a Float64Array', new Float64Array(1)],
    ['an ArrayBuffer', new ArrayBuffer(2)],
    ['a boxed string', new String('text')],
  ])('write(%s) rejects at once; the call goes on', async (_what, chunk) => {
    const err = expectError(await rejectsAtOnce(call.write(chunk as never)), ...TYPE, chunk);
    expect(err.message).toContain('"chunk"');
    await stillWorks();
  });

  test.each<[string, unknown]>([
    ['a string', 'text'],
    ['a number', 0],
    ['a Uint32Array', new Uint32Array(1)],
  ])('end(%s) rejects at once; the call goes on', async (_what, chunk) => {
    expectError(await rejectsAtOnce(call.end(chunk as never)), ...TYPE, chunk);
    await stillWorks();
  });

  test('write after end: ERR_STREAM_WRITE_AFTER_END, at once', async () => {
    const ending = call.end(Buffer.from('last'));
    expectError(await rejectsAtOnce(call.write(Buffer.from('more'))), Error, 'ERR_STREAM_WRITE_AFTER_END');
    await ending;
    await expect(call.result).resolves.toMatchObject({ service: 52 });
  });

  test('end twice: the second rejects with ERR_STREAM_WRITE_AFTER_END, the call completes once', async () => {
    const first = call.end(Buffer.from('abc'));
    expectError(await rejectsAtOnce(call.end()), Error, 'ERR_STREAM_WRITE_AFTER_END');
    await first;
    await expect(call.result).resolves.toMatchObject({ service: 52 });
    expect(kernel.requests).toHaveLength(1);
  });

  test.each<[string, unknown, readonly [ErrorClass, string]]>([
    ['0', 0, RANGE],
    ['2**32', 2 ** 32, RANGE],
    ['NaN', NaN, RANGE],
    ['1.5', 1.5, RANGE],
    ['Infinity', Infinity, RANGE],
    ['-(2**31) - 1', -(2 ** 31) - 1, RANGE],
    ['"1"', '1', TYPE],
    ['null', null, TYPE],
    ['an object', { code: 1 }, TYPE],
    ['1n', 1n, TYPE],
  ])('abort(%s) throws before doing anything; the call goes on', async (_what, code, [cls, errCode]) => {
    const err = expectError(thrown(() => call.abort(code as never)), cls, errCode, code);
    expect(err.message).toContain('"code"');
    await stillWorks();
    expect(kernel.sent.some((s) => s.abort !== undefined)).toBe(false);
  });

  test('abort() after the call completed is a no-op: nothing on the wire, the result stays', async () => {
    await stillWorks();
    call.abort();
    call.abort(RXGEN_OPCODE);
    await expect(call.result).resolves.toMatchObject({ service: 52 });
    expect(kernel.sent.some((s) => s.abort !== undefined)).toBe(false);
  });

  test('after abort(): write, end and the reply iterator reject with the local RxAbortError', async () => {
    call.abort(RXGEN_OPCODE);
    const err = await rejection(call.write(Buffer.from('x')));
    expect(err).toBeInstanceOf(RxAbortError);
    expect(err).toMatchObject({ code: 'ERR_RX_ABORT', abortCode: RXGEN_OPCODE, local: true });
    await expect(call.end()).rejects.toBe(err);
    await expect(call[Symbol.asyncIterator]().next()).rejects.toBe(err);
    await expect(call.result).rejects.toBe(err);
  });

  test('the client closes under an open call: write, result and iterator reject with ERR_SOCKET_CLOSED', async () => {
    await call.write(Buffer.from('part'));
    client.close();
    const err = expectError(await rejection(call.result), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    await expect(call.write(Buffer.from('x'))).rejects.toBe(err);
    await expect(call[Symbol.asyncIterator]().next()).rejects.toBe(err);
  });
});

describe('bad input: Client methods', () => {
  test.each<[string, unknown, unknown, readonly [ErrorClass, string], unknown]>([
    ['destination null', null, { service: 52, request: Buffer.alloc(4) }, TYPE, null],
    ['a host name', { address: 'vl.example', port: 7003 }, { service: 52, request: Buffer.alloc(4) }, VALUE, 'vl.example'],
    ['port 0', { ...PEER, port: 0 }, { service: 52, request: Buffer.alloc(4) }, RANGE, 0],
    ['options null', PEER, null, TYPE, null],
    ['options a string', PEER, 'probe', TYPE, 'probe'],
    ['options an array', PEER, [{ service: 52, request: Buffer.alloc(4) }], TYPE, NO_VALUE],
    ['service 0', PEER, { service: 0, request: Buffer.alloc(4) }, RANGE, 0],
    ['service 65536', PEER, { service: 65536, request: Buffer.alloc(4) }, RANGE, 65536],
    ['service "52"', PEER, { service: '52', request: Buffer.alloc(4) }, TYPE, '52'],
    ['upgradeTo 0', PEER, { service: 52, upgradeTo: 0, request: Buffer.alloc(4) }, RANGE, 0],
    ['upgradeTo 2503.5', PEER, { service: 52, upgradeTo: 2503.5, request: Buffer.alloc(4) }, RANGE, 2503.5],
    ['request missing', PEER, { service: 52 }, TYPE, undefined],
    ['request a string', PEER, { service: 52, request: 'caps' }, TYPE, 'caps'],
    ['request a Uint16Array', PEER, { service: 52, request: new Uint16Array(2) }, TYPE, new Uint16Array(2)],
    ['timeout -1', PEER, { service: 52, request: Buffer.alloc(4), timeout: -1 }, RANGE, -1],
    ['timeout "1s"', PEER, { service: 52, request: Buffer.alloc(4), timeout: '1s' }, TYPE, '1s'],
    ['signal a plain object', PEER, { service: 52, request: Buffer.alloc(4), signal: {} }, TYPE, {}],
  ])('probe: %s rejects at once and nothing is sent', async (_what, destination, options, [cls, code], value) => {
    expectError(await rejectsAtOnce(client.probe(destination as never, options as never)), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
    expect(client.learnedService(PEER, 52)).toBeUndefined();
  });

  test.each<[string, unknown, unknown, readonly [ErrorClass, string], unknown]>([
    ['destination null', null, 52, TYPE, null],
    ['a host name', { address: 'localhost', port: 7003 }, 52, VALUE, 'localhost'],
    ['port 65536', { ...PEER, port: 65536 }, 52, RANGE, 65536],
    ['service 0', PEER, 0, RANGE, 0],
    ['service undefined', PEER, undefined, TYPE, undefined],
    ['service "52"', PEER, '52', TYPE, '52'],
  ])('learnedService: %s throws', (_what, destination, service, [cls, code], value) => {
    expectError(thrown(() => client.learnedService(destination as never, service as never)), cls, code, value);
  });

  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['a string', 'all', TYPE, 'all'],
    ['an empty string', '', TYPE, ''],
    ['null', null, TYPE, null],
    ['0', 0, TYPE, 0],
    ['false', false, TYPE, false],
    ['a number', 7003, TYPE, 7003],
    ['an empty object', {}, TYPE, undefined],
    ['a host name', { address: 'localhost', port: 7003 }, VALUE, 'localhost'],
  ])('forget(%s) throws and forgets nothing', async (_what, destination, [cls, code], value) => {
    kernel.peer(PEER.address, PEER.port, () => ({ reply: Buffer.from([0, 0, 0, 0]) }));
    await client.probe(PEER, { service: 52, request: Buffer.alloc(4) });
    expectError(thrown(() => client.forget(destination as never)), cls, code, value);
    expect(client.learnedService(PEER, 52)).toMatchObject({ service: 52 });
  });

  test('forget() with no argument forgets every destination', async () => {
    kernel.peer(PEER.address, PEER.port, () => ({ reply: Buffer.from([0, 0, 0, 0]) }));
    await client.probe(PEER, { service: 52, request: Buffer.alloc(4) });
    client.forget(undefined);
    expect(client.learnedService(PEER, 52)).toBeUndefined();
  });
});

describe('bad input: one peer under several spellings of its IPv6 address', () => {
  const V6 = { address: '::1', port: 17004 };
  const SPELLINGS = ['0:0:0:0:0:0:0:1', '0::1', '::0001', '0000:0000::0:1'];

  test.each(SPELLINGS)('a probe learned for ::1 is learned for %s, and forget() under that spelling forgets it', async (other) => {
    kernel.peer(V6.address, V6.port, () => ({ reply: Buffer.from([0, 0, 0, 0]) }));
    await client.probe(V6, { service: 52, request: Buffer.alloc(4) });
    expect(client.learnedService({ address: other, port: V6.port }, 52)).toMatchObject({ service: 52 });
    client.forget({ address: other, port: V6.port });
    expect(client.learnedService(V6, 52)).toBeUndefined();
  });

  test('maxCallsPerPeer counts the calls to every spelling of one address', async () => {
    kernel.peer(V6.address, V6.port, ({ data }) => (data.toString() === 'hang' ? { silent: true } : { reply: Buffer.from('ok') }));
    const controller = new AbortController();
    const first = client.call({ ...V6, service: 52 }, Buffer.from('hang'), { signal: controller.signal });
    first.catch(() => {});
    await until(() => kernel.requests.length === 1);
    const second = client.call({ address: '0:0:0:0:0:0:0:1', port: V6.port, service: 52 }, Buffer.from('next'));
    second.catch(() => {}); // awaited below; a failed expectation before that must not leave it unhandled
    for (let i = 0; i < 5; i++) await turn();
    // The second waits for the peer's one slot: it has not reached the kernel, nor a starter thread.
    expect(kernel.requests).toHaveLength(1);
    expect(kernel.sockets.map((sock) => sock.starting.size)).not.toContain(1);
    controller.abort();
    await expect(second).resolves.toMatchObject({ data: Buffer.from('ok') });
    expect(kernel.requests).toHaveLength(2);
  });
});

describe('bad input: a closed Client', () => {
  beforeEach(() => client.close());

  test('openCall throws ERR_SOCKET_CLOSED (after checking its arguments)', () => {
    expectError(thrown(() => client.openCall(DEST)), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    expectError(thrown(() => client.openCall({ ...DEST, port: 0 })), ...RANGE, 0);
  });

  test('call rejects at once with ERR_SOCKET_CLOSED', async () => {
    expectError(await rejectsAtOnce(client.call(DEST, Buffer.from('x'))), EndpointClosedError, 'ERR_SOCKET_CLOSED');
  });

  test('probe and probeVL reject at once with ERR_SOCKET_CLOSED', async () => {
    expectError(await rejectsAtOnce(client.probe(PEER, { service: 52, request: Buffer.alloc(4) })), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    expectError(await rejectsAtOnce(probeVL(client, PEER)), EndpointClosedError, 'ERR_SOCKET_CLOSED');
  });

  test('close() again, ref(), unref() and asyncDispose do nothing and throw nothing; "close" is emitted once', async () => {
    const closes = jest.fn();
    const c = new Client({ binding: kernel.binding });
    c.on('close', closes);
    await c.call(DEST, Buffer.from('x'));
    c.close();
    c.close();
    expect(c.ref()).toBe(c);
    expect(c.unref()).toBe(c);
    await c[Symbol.asyncDispose]();
    await until(() => closes.mock.calls.length > 0);
    await new Promise((r) => setImmediate(r));
    expect(closes).toHaveBeenCalledTimes(1);
    expect(kernel.sockets.every((s) => s.closed)).toBe(true);
  });

  test('closing with calls in every state settles all of them with ERR_SOCKET_CLOSED', async () => {
    const c = new Client({ binding: kernel.binding, maxCallsPerPeer: 1 });
    kernel.peer(PEER.address, PEER.port, () => ({ silent: true }));
    const running = c.call(DEST, Buffer.from('1'));
    const waiting = c.call(DEST, Buffer.from('2')); // waits for the one slot
    const streaming = c.openCall({ ...DEST, service: 53 });
    await until(() => kernel.requests.length === 1);
    c.close();
    for (const p of [running, waiting, streaming.result]) {
      expectError(await rejection(p), EndpointClosedError, 'ERR_SOCKET_CLOSED');
    }
  });
});

describe('bad input: probeVL, probeFS, capabilitiesRequest, decodeCapabilities', () => {
  test.each<[string, unknown]>([
    ['null', null],
    ['a plain object', {}],
    ['a string', 'client'],
    ['an EventEmitter', new EventEmitter()],
  ])('probeVL and probeFS with a client that is %s reject at once', async (_what, c) => {
    for (const probe of [probeVL, probeFS]) {
      const err = expectError(await rejectsAtOnce(probe(c as never, PEER)), ...TYPE, c);
      expect(err.message).toContain('"client"');
    }
  });

  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['null', null, TYPE, null],
    ['a string', '127.0.0.1', TYPE, '127.0.0.1'],
    ['an array', ['127.0.0.1', 7003], TYPE, ['127.0.0.1', 7003]],
    ['a host name', { address: 'vl.example' }, VALUE, 'vl.example'],
    ['no address', { port: 7003 }, TYPE, undefined],
    ['port 0', { address: '127.0.0.1', port: 0 }, RANGE, 0],
    ['port null', { address: '127.0.0.1', port: null }, TYPE, null],
    ['IPv4-mapped IPv6', { address: '::ffff:127.0.0.1' }, VALUE, '::ffff:127.0.0.1'],
  ])('probeVL and probeFS with a destination that is %s return a promise that rejects at once', async (_what, destination, [cls, code], value) => {
    for (const probe of [probeVL, probeFS]) {
      let result: unknown;
      expect(() => (result = probe(client, destination as never))).not.toThrow();
      expectError(await rejectsAtOnce(result), cls, code, value);
    }
    expect(nothingSent(kernel)).toBe(true);
  });

  test('probeVL with port: undefined probes the default port 7003', async () => {
    kernel.peer('127.0.0.1', 7003, () => ({ reply: Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]) }));
    await expect(probeVL(client, { address: '127.0.0.1', port: undefined })).resolves.toMatchObject({ service: 52, capabilities: [1] });
    expect(kernel.requests[0].target).toMatchObject({ port: 7003, service: 52 });
  });

  test.each<[string, unknown, readonly [ErrorClass, string], unknown]>([
    ['options null', null, TYPE, null],
    ['options a number', 5000, TYPE, 5000],
    ['options an array', [{ timeout: 5 }], TYPE, [{ timeout: 5 }]],
    ['timeout -1', { timeout: -1 }, RANGE, -1],
    ['timeout NaN', { timeout: NaN }, RANGE, NaN],
    ['signal a string', { signal: 'stop' }, TYPE, 'stop'],
  ])('probeVL with %s rejects at once; nothing is sent or learned', async (_what, options, [cls, code], value) => {
    expectError(await rejectsAtOnce(probeVL(client, PEER, options as never)), cls, code, value);
    expect(nothingSent(kernel)).toBe(true);
    expect(client.learnedService({ ...PEER, port: 17003 }, 52)).toBeUndefined();
  });

  test.each<[string, unknown, readonly [ErrorClass, string]]>([
    ['"65537"', '65537', TYPE],
    ['null', null, TYPE],
    ['65537n', 65537n, TYPE],
    ['1.5', 1.5, RANGE],
    ['-1', -1, RANGE],
    ['2**32', 2 ** 32, RANGE],
    ['NaN', NaN, RANGE],
  ])('capabilitiesRequest(%s) throws, naming "opcode"', (_what, opcode, [cls, code]) => {
    const err = expectError(thrown(() => capabilitiesRequest(opcode as never)), cls, code, opcode);
    expect(err.message).toContain('"opcode"');
  });

  test.each<[string, unknown]>([
    ['null', null],
    ['a string', '\0\0\0\0'],
    ['an array of bytes', [0, 0, 0, 0]],
    ['a Uint32Array', new Uint32Array(1)],
  ])('decodeCapabilities(%s) throws a TypeError naming "reply"', (_what, reply) => {
    const err = expectError(thrown(() => decodeCapabilities(reply as never)), ...TYPE, reply);
    expect(err.message).toContain('"reply"');
  });

  test.each<[string, number[], string]>([
    ['an empty reply', [], 'u32 needs 4 bytes, 0 left'],
    ['a count with too few words', [0, 0, 0, 2, 0, 0, 0, 1], 'array count 2 exceeds the 4 bytes left'],
    ['a count over 1024', [0, 0, 4, 1, ...new Array<number>(1025 * 4).fill(0)], 'array count 1025 exceeds 1024'],
    ['a count of 2**32-1', [0xff, 0xff, 0xff, 0xff], 'array count 4294967295'],
    ['trailing bytes', [0, 0, 0, 1, 0, 0, 0, 1, 9], '1 unread bytes at the end'],
    ['a truncated word', [0, 0, 0, 1, 0, 0], 'exceeds the 2 bytes left'],
  ])('decodeCapabilities of %s: MalformedError', (_what, bytes, text) => {
    expectError(thrown(() => decodeCapabilities(Uint8Array.from(bytes))), MalformedError, 'ERR_RXRPC_MALFORMED', NO_VALUE, text);
  });
});

test('bad input: nothing in this file left an unhandled rejection, an uncaught exception or a warning', lastTest);
