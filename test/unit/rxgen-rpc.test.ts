/**
 * Generated clients and server handlers on the fake kernel: what goes on the
 * wire for each call, how OUT and INOUT parameters come back, how aborts and
 * bad replies surface, and how the handler answers good and bad requests.
 */
import { Client } from '../../lib/client';
import { RXGEN_DECODE, RXGEN_OPCODE, RXGEN_SS_MARSHAL, RXGEN_SS_UNMARSHAL } from '../../lib/constants';
import { MalformedError, RxAbortError } from '../../lib/errors';
import { generate } from '../../lib/rxgen';
import { Server } from '../../lib/server';
import { XdrReader, XdrWriter } from '../../lib/xdr';
import { FakeKernel, FakeRequest, PeerAnswer } from '../fake-kernel';
import { KITCHEN, optionsFor } from './rxgen-fixtures';
import { compile, LIB, plain, STRICT } from './rxgen-support';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let ks: Record<string, any>;

beforeAll(() => {
  const out = generate(KITCHEN['/ks/ks.xg'], optionsFor(KITCHEN, '/ks/ks.xg', { importFrom: LIB })).files.get('ks.ts')!;
  const compiled = compile({ 'ks.ts': out }, { ...STRICT, declaration: false });
  expect(compiled.diagnostics).toEqual([]);
  ks = compiled.load('ks.ts');
}, 120000);

const scalars = {
  i: -1, u: 4000000000, ii: 2, uu: 3, ulone: 4, s: -300, us: 60000, c: -5, uc: 250, b: true,
  h: -(2n ** 40n), uh: 2n ** 63n, hh: 7n, f: 0.5, d: -1e300, color: 5, color2: 6, alias: 9,
};
const bytes = (type: string, v: unknown) => {
  const w = new XdrWriter();
  ks[`encode_${type}`](w, v);
  return w.toBuffer();
};
const op = (n: number) => new XdrWriter().i32(n).toBuffer();

describe('rxgen: generated client functions', () => {
  const dest = { address: '10.0.0.1', port: 7000, service: 77 };
  let kernel: FakeKernel;
  let client: Client;
  let requests: Buffer[];
  const peer = (answer: (r: XdrReader, data: Buffer) => PeerAnswer) => {
    kernel.peer(dest.address, dest.port, (req: FakeRequest) => {
      requests.push(req.data);
      return answer(new XdrReader(req.data), req.data);
    });
  };
  beforeEach(() => {
    kernel = new FakeKernel();
    client = new Client({ binding: kernel.binding });
    requests = [];
  });
  afterEach(() => client.close());

  test('a call sends the opcode and the IN parameters, and returns the OUT parameters as an object', async () => {
    peer((r) => {
      expect(r.i32()).toBe(1001);
      const input = ks.decode_ks_scalars(r);
      r.end();
      return { reply: bytes('ks_scalars', { ...input, i: input.i - 1 }) };
    });
    const result = await ks.KS_Echo(client, dest, scalars);
    expect(result).toEqual({ output: { ...scalars, i: -2 } });
    expect(requests[0]).toEqual(Buffer.concat([op(1001), bytes('ks_scalars', scalars)]));
  });

  test('INOUT parameters go out and come back; a parameter whose direction was carried over is returned', async () => {
    const arrays = {
      name: 'vol', fixed: [1, 2, 3], var: [4], unbounded: [], str: 'é', anystr: '', fixedop: new Uint8Array(5), varop: Uint8Array.of(9),
      names: ['a', 'b'], nested: scalars, lists: [[1, 2]], key: new Uint8Array(8), blob: new Uint8Array(0), any: [-1],
    };
    peer((r) => {
      const op1 = r.i32();
      if (op1 === 1004) return { reply: new XdrWriter().i32(r.i32() * 2).toBuffer() }; // Carry2: OUT e from IN f
      const a = ks.decode_ks_arrays(r);
      const add = r.i32();
      const w = new XdrWriter();
      ks.encode_ks_arrays(w, { ...a, name: a.name.toUpperCase() });
      return { reply: w.i32(a.fixed.reduce((x: number, y: number) => x + y, add)).toBuffer() };
    });
    const out = await ks.KS_Arrays(client, dest, arrays, 10);
    expect(plain(out)).toEqual(plain({ a: { ...arrays, name: 'VOL' }, sum: 16 }));
    await expect(ks.KS_Carry2(client, dest, 21)).resolves.toEqual({ e: 42 });
    expect(ks.KS_Carry2.length).toBe(4); // client, destination, f, options
  });

  test('a reply with bytes left over, or one cut short, rejects with MalformedError', async () => {
    let reply = Buffer.concat([new XdrWriter().i32(3).toBuffer(), Buffer.alloc(4)]);
    peer(() => ({ reply }));
    await expect(ks.KT_Two(client, dest)).rejects.toThrow(new MalformedError('XDR', '4 unread bytes at the end', 4));
    reply = Buffer.alloc(2);
    await expect(ks.KT_Two(client, dest)).rejects.toBeInstanceOf(MalformedError);
    reply = Buffer.alloc(0);
    await expect(ks.KS_Nothing(client, dest)).resolves.toBeUndefined();
  });

  test('an abort code from the interface\'s error table is named on the RxAbortError', async () => {
    peer(() => ({ abort: ks.KS_GONE }));
    const err = await ks.KS_Fail(client, dest, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RxAbortError);
    expect(err).toMatchObject({ abortCode: 185091, abortName: 'KS_GONE', message: 'Call aborted with code 185091 (KS_GONE)' });
    peer(() => ({ abort: 12345 }));
    await expect(ks.KS_Fail(client, dest, 1)).rejects.toMatchObject({ abortCode: 12345, abortName: undefined });
  });

  test('bad arguments are typed errors that name the parameter, and nothing is sent', async () => {
    peer(() => ({ reply: Buffer.alloc(0) }));
    await expect(ks.KS_Names(client, dest, 'x'.repeat(17))).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'name' });
    await expect(ks.KS_Echo(client, dest, { ...scalars, b: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', argument: 'input.b' });
    await expect(ks.KS_Union(client, dest, { kind: 0 }, { flag: false }, { which: 1, one: 1 }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', argument: 'u.red', value: undefined });
    expect(requests).toEqual([]);
    expect(kernel.requests).toEqual([]);
  });

  test('unions and optional data travel with their discriminants and flags', async () => {
    peer((r) => {
      r.i32();
      const u = ks.decode_ks_u(r);
      const b = ks.decode_ks_b(r);
      const n = ks.decode_ks_nodefault(r);
      r.end();
      expect(plain([u, b, n])).toEqual([{ kind: 9, other: [1, 2] }, { flag: true, yes: 7 }, { which: 2, two: 'ab' }]);
      return { reply: bytes('ks_u', { kind: 6, blue: 'six' }) };
    });
    await expect(ks.KS_Union(client, dest, { kind: 9, other: Uint8Array.of(1, 2) }, { flag: true, yes: 7 }, { which: 2, two: 'ab' }))
      .resolves.toEqual({ u2: { kind: 6, blue: 'six' } });
    peer((r) => {
      r.i32();
      const head = ks.decode_ks_nodeptr(r);
      const opt = ks.decode_ks_optional(r);
      let n = 0;
      for (let x = head; x; x = x.next) n++;
      return { reply: new XdrWriter().i32(n + (opt.maybe ?? 0)).toBuffer() };
    });
    const list = { value: 1, next: { value: 2, next: { value: 3, next: null } } };
    await expect(ks.KS_List(client, dest, list, { maybe: 10, maybeName: null })).resolves.toEqual({ count: 13 });
    expect(requests[1]).toEqual(Buffer.concat([op(1006), bytes('ks_nodeptr', list), bytes('ks_optional', { maybe: 10, maybeName: null })]));
  });

  test('a split call: the arguments, then data both ways, then the OUT parameters', async () => {
    const data = Buffer.from('the data of the file');
    peer((r, raw) => {
      const opcode = r.i32();
      const len = r.i32();
      if (opcode === 1008) return { reply: Buffer.concat([data.subarray(0, len), new XdrWriter().i32(len).toBuffer()]) };
      // Store: the data follows the arguments.
      return { reply: new XdrWriter().i32(raw.length - 8).toBuffer() };
    });
    const fetch = await ks.BeginKS_Fetch(client, dest, 8);
    expect((await fetch.read(8)).toString()).toBe('the data');
    await expect(ks.FinishKS_Fetch(fetch)).resolves.toEqual({ status: 8 });

    const store = await ks.BeginKS_Store(client, dest, data.length);
    await store.write(data.subarray(0, 5));
    await store.write(data.subarray(5));
    await expect(ks.FinishKS_Store(store)).resolves.toEqual({ status: data.length });
    expect(requests[1]).toEqual(Buffer.concat([op(1009), new XdrWriter().i32(data.length).toBuffer(), data]));

    const short = await ks.BeginKS_Fetch(client, dest, 4);
    await expect(short.read(-1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'n', value: -1 });
    await expect(short.read(100)).rejects.toThrow(/needs 100 bytes, 8 left/);
  });
});

describe('rxgen: generated server handlers', () => {
  let kernel: FakeKernel;
  let server: Server;
  let errors: Array<[string, number]>;
  let callId = 0;
  afterEach(() => server.close({ timeout: 10 }));

  function serve(impl: Record<string, unknown>) {
    kernel = new FakeKernel();
    callId = 0; // the ids of the accept charges the new server makes
    errors = [];
    server = new Server({ address: '127.0.0.1', port: 7001, services: 77, binding: kernel.binding },
      ks.KS_handler(impl, { onError: (e: Error, _call: unknown, code: number) => errors.push([e.message, code]) }));
    return kernel.sockets[0];
  }

  /** Makes a call to the server and waits until it has replied or aborted. */
  async function request(body: Buffer): Promise<{ reply: Buffer; abort: number | undefined }> {
    const id = ++callId;
    const start = kernel.sent.length;
    const chunks = kernel.callServer(kernel.sockets[0], id, body, 77);
    const done = () => kernel.sent.slice(start).find((x) => x.callId === id && (x.abort !== undefined || !x.more));
    for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
    return { reply: Buffer.concat(chunks), abort: done()?.abort };
  }

  test('decodes the IN parameters, calls the implementation and encodes what it returns', async () => {
    const seen: unknown[] = [];
    serve({ Echo: async (input: unknown, call: { service: number }) => {
      seen.push(call.service);
      return { output: input };
    } });
    const { reply, abort } = await request(Buffer.concat([op(1001), bytes('ks_scalars', scalars)]));
    expect(abort).toBeUndefined();
    expect(reply).toEqual(bytes('ks_scalars', scalars));
    expect(seen).toEqual([77]);
  });

  test('INOUT parameters come in and go back out', async () => {
    serve({ Ids: (ids: { when: { ticks: bigint } }) => ({ ids: { ...ids, when: { ticks: ids.when.ticks + 1n } } }) });
    const ids = { uuid: { time_low: 1, time_mid: 2, time_hi_and_version: 3, clock_seq_hi_and_reserved: 4, clock_seq_low: 5, node: [6, 7, 8, 9, 10, 11] }, when: { ticks: 10n } };
    const { reply } = await request(Buffer.concat([op(1007), bytes('ks_ids', ids)]));
    expect(reply).toEqual(bytes('ks_ids', { ...ids, when: { ticks: 11n } }));
  });

  test('unknown opcodes and procedures the implementation lacks are aborted with RXGEN_OPCODE; no opcode with RXGEN_DECODE', async () => {
    serve({ Echo: () => ({ output: scalars }) });
    expect((await request(op(999))).abort).toBe(RXGEN_OPCODE);
    expect((await request(op(1011))).abort).toBe(RXGEN_OPCODE); // Fail is not implemented
    expect((await request(Buffer.from([0, 0]))).abort).toBe(RXGEN_DECODE);
  });

  test('arguments that do not decode, or bytes after them, abort with RXGEN_SS_UNMARSHAL and are reported', async () => {
    const handled: unknown[] = [];
    serve({ Fail: (code: number) => handled.push(code) });
    expect((await request(Buffer.concat([op(1011), Buffer.alloc(2)]))).abort).toBe(RXGEN_SS_UNMARSHAL);
    expect((await request(Buffer.concat([op(1011), Buffer.alloc(8)]))).abort).toBe(RXGEN_SS_UNMARSHAL);
    expect(handled).toEqual([]);
    expect(errors).toEqual([
      ['Malformed XDR: i32 needs 4 bytes, 2 left at offset 4', RXGEN_SS_UNMARSHAL], // offsets into the whole request
      ['Malformed XDR: 4 unread bytes at the end at offset 8', RXGEN_SS_UNMARSHAL],
    ]);
  });

  test('an RxAbortError thrown by the implementation aborts with its code', async () => {
    serve({ Fail: (code: number) => { throw new RxAbortError(code); } });
    expect((await request(Buffer.concat([op(1011), new XdrWriter().i32(ks.KS_BROKEN).toBuffer()]))).abort).toBe(ks.KS_BROKEN);
    expect(errors).toEqual([]);
  });

  test('results that do not encode abort with RXGEN_SS_MARSHAL and say why', async () => {
    serve({ Names: () => ({ upper: 'x'.repeat(17) }), Echo: () => undefined });
    expect((await request(Buffer.concat([op(1012), bytes('ks_name', 'a')]))).abort).toBe(RXGEN_SS_MARSHAL);
    expect((await request(Buffer.concat([op(1001), bytes('ks_scalars', scalars)]))).abort).toBe(RXGEN_SS_MARSHAL);
    expect(errors.map(([m]) => m)).toEqual([
      expect.stringContaining('The value of "upper" is out of range. It must be at most 16 bytes long in UTF-8.'),
      'The "KS_Echo results" argument must be an object. Received undefined',
    ]);
  });

  test('split calls: the implementation reads the data after the arguments and writes data before the results', async () => {
    serve({
      async Store(len: number, call: { read(n: number): Promise<Buffer> }) {
        const data = await call.read(len);
        return { status: data.reduce((a, b) => a + b, 0) };
      },
      async Fetch(len: number, call: { write(b: Uint8Array): Promise<void> }) {
        await call.write(Buffer.alloc(len, 1));
        return { status: len };
      },
    });
    const store = await request(Buffer.concat([op(1009), new XdrWriter().i32(3).toBuffer(), Buffer.from([1, 2, 3])]));
    expect(store).toEqual({ reply: new XdrWriter().i32(6).toBuffer(), abort: undefined });
    const fetch = await request(Buffer.concat([op(1008), new XdrWriter().i32(5).toBuffer()]));
    expect(fetch).toEqual({ reply: Buffer.concat([Buffer.alloc(5, 1), new XdrWriter().i32(5).toBuffer()]), abort: undefined });
    // In an interface with split calls, ordinary calls still check their arguments.
    serve({ Fail: () => undefined });
    expect((await request(Buffer.concat([op(1011), Buffer.alloc(8)]))).abort).toBe(RXGEN_SS_UNMARSHAL);
  });
});
