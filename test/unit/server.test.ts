import { MSG_EOR, MSG_MORE, RX_USER_ABORT, RXRPC_ABORT, RXRPC_NET_ERROR, RXRPC_USER_CALL_ID } from '../../lib/constants';
import { encodeSockaddr } from '../../lib/codec';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedModuleVersion, Server, upgradeWarning } from '../../lib/server';
import fc from 'fast-check';
import { ChunkQueue } from '../../lib/queue';
import { cmsg, FakeKernel } from '../fake-kernel';

describe('server-side upgrade warning', () => {
  test.each(['6.1.0-56-amd64', '6.12.95+deb12-amd64', '7.2.13-amd64', '7.3.4+deb13-amd64'])(
    'warns on %s, a kernel measured to break server-side upgrade', (release) => {
      expect(upgradeWarning(release)).toMatch(new RegExp(`^kernel ${release.replace(/[+.]/g, '\\$&')}: server-side service upgrade was measured broken`));
    });

  test.each(['7.4.0', '8.0.1-amd64', 'not-a-version'])('does not warn on %s', (release) => {
    expect(upgradeWarning(release)).toBeUndefined();
  });

  test('does not warn where the running rxrpc module is the fixed one', () => {
    expect(upgradeWarning('6.1.0-57-amd64', 'upgrade-fix.1')).toBeUndefined();
    expect(upgradeWarning('6.1.0-57-amd64', undefined)).toMatch(/measured broken/);
  });

  test('the fixed module is recognised by its version file, and nothing else is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxrpc-sysfs-'));
    const file = join(dir, 'version');
    expect(fixedModuleVersion(file)).toBeUndefined(); // Debian's module: no version file
    writeFileSync(file, 'upgrade-fix.3\n');
    expect(fixedModuleVersion(file)).toBe('upgrade-fix.3');
    writeFileSync(file, '2.0\n');
    expect(fixedModuleVersion(file)).toBeUndefined();
    rmSync(dir, { recursive: true });
  });
});

describe('Server handlers on a fake kernel', () => {
  const tick = () => new Promise((r) => setTimeout(r, 5));
  let kernel: FakeKernel;
  let server: Server;
  afterEach(() => server.close({ timeout: 10 }));

  function serve(handler: ConstructorParameters<typeof Server>[1]) {
    kernel = new FakeKernel();
    server = new Server({ address: '127.0.0.1', port: 7001, services: 52, binding: kernel.binding }, handler);
    return kernel.sockets[0];
  }

  test('a returned Uint8Array is the reply, ended without MSG_MORE', async () => {
    const socket = serve(async (call) => Buffer.concat([Buffer.from('re:'), await call.request()]));
    const reply = kernel.callServer(socket, 1, Buffer.from('hello'), 52);
    await tick();
    expect(Buffer.concat(reply).toString()).toBe('re:hello');
    const sends = kernel.sent.filter((x) => x.callId === 1);
    expect(sends.at(-1)).toMatchObject({ more: false });
  });

  test('a handler returning something else aborts the call and says why, never a silent empty reply', async () => {
    const errors: Error[] = [];
    const socket = serve(() => 'hello' as unknown as Uint8Array);
    server.on('handlerError', (err) => errors.push(err));
    const reply = kernel.callServer(socket, 1, Buffer.from('x'), 52);
    await tick();
    expect(reply).toEqual([]);
    expect(kernel.sent.filter((x) => x.callId === 1 && x.abort !== undefined).map((x) => x.abort)).toEqual([RX_USER_ABORT]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', value: 'hello' });
  });

  test.each([
    ['a network error (RXRPC_NET_ERROR)', RXRPC_NET_ERROR, 111],
    ['a peer abort', RXRPC_ABORT, -1],
  ])('a handler that fails with the error that ended its call, %s, is not reported as a handler error', async (_what, type, value) => {
    const errors: Error[] = [];
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    let failedWith: unknown;
    const socket = serve(async (call) => {
      try {
        for await (const chunk of call) void chunk;
      } catch (err) {
        failedWith = err;
        throw err;
      }
    });
    server.on('handlerError', (err) => errors.push(err));
    const id = Buffer.alloc(8);
    id.writeBigUInt64LE(1n);
    const name = encodeSockaddr({ service: 52, address: '127.0.0.1', port: 7100 });
    socket.deliver(Buffer.from('part'), MSG_MORE, name, cmsg(RXRPC_USER_CALL_ID, id));
    const v = Buffer.alloc(4);
    v.writeInt32LE(value);
    socket.deliver(Buffer.alloc(0), MSG_EOR, name, Buffer.concat([cmsg(RXRPC_USER_CALL_ID, id), cmsg(type, v)]));
    await tick();
    process.off('warning', onWarning);
    expect(failedWith).toBeInstanceOf(Error);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    // Nothing is sent for a call the kernel has already ended.
    expect(kernel.sent.filter((x) => x.callId === 1 && x.abort !== undefined)).toEqual([]);
  });

  test('a handler that fails with another error after its call ended is still reported', async () => {
    const errors: Error[] = [];
    const socket = serve(async (call) => {
      await call.request().catch(() => {});
      throw new Error('handler bug');
    });
    server.on('handlerError', (err) => errors.push(err));
    kernel.callServer(socket, 1, Buffer.from('x'), 52);
    socket.deliverAbort(1, -1);
    await tick();
    expect(errors.map((e) => e.message)).toEqual(['handler bug']);
  });

  test('call.signal, read after the call failed, is already aborted', async () => {
    let seen: AbortSignal | undefined;
    const socket = serve(async (call) => {
      await new Promise((r) => setTimeout(r, 20));
      seen = call.signal;
    });
    kernel.callServer(socket, 1, Buffer.from('x'), 52);
    await tick();
    socket.deliverAbort(1, -1);
    await new Promise((r) => setTimeout(r, 30));
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toMatchObject({ name: 'RxAbortError', abortCode: -1 });
  });
});

describe('ChunkQueue, the queue between a call\'s data and its reader', () => {
  // One step: push a chunk, or take one with next() (only when one is queued: a waiting next() takes the next push).
  const step = fc.oneof(fc.uint8Array({ maxLength: 40 }).map((b) => ({ push: Buffer.from(b) })), fc.constant({ take: true }));

  test('all() and concatenated() hold what was pushed and not taken, in order, whichever is asked for first and when', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { maxLength: 12 }), fc.nat(12), fc.boolean(), async (steps, askAt, joinedFirst) => {
      const q = new ChunkQueue();
      const left: Buffer[] = [];
      let queued = 0;
      let whole: Promise<Buffer[]> | undefined;
      let joined: Promise<Buffer> | undefined;
      const ask = () => {
        if (joinedFirst) joined = q.concatenated();
        else whole = q.all();
      };
      for (const [i, s] of steps.entries()) {
        if (i === askAt) ask();
        if ('push' in s) {
          q.push(s.push);
          left.push(s.push);
          queued++;
        } else if (queued > 0 && !whole && !joined) {
          const r = await q.next();
          expect(r.value).toBe(left.shift());
          queued--;
        }
      }
      q.end();
      if (!whole && !joined) ask();
      whole ??= q.all();
      joined ??= q.concatenated();
      const chunks = await whole;
      const bytes = await joined;
      expect(Buffer.concat(chunks)).toEqual(Buffer.concat(left));
      expect(bytes).toEqual(Buffer.concat(left));
      expect(q.bytes).toBe(steps.reduce((n, s) => n + ('push' in s ? s.push.length : 0), 0));
      // A copy, even of one chunk: it keeps none of the pushed buffers alive.
      for (const c of left) expect(bytes.buffer === c.buffer && bytes.byteOffset === c.byteOffset && c.length > 0).toBe(false);
    }));
  });

  test('an error that ends the queue rejects all(), concatenated() and a waiting next(), asked before or after', async () => {
    const q = new ChunkQueue();
    const waiting = q.next();
    const joined = q.concatenated();
    q.push(Buffer.from('x')); // taken by the waiting next()
    const whole = q.all();
    const err = new Error('peer aborted');
    q.end(err);
    await expect(waiting).resolves.toEqual({ value: Buffer.from('x'), done: false });
    await expect(joined).rejects.toBe(err);
    await expect(whole).rejects.toBe(err);
    await expect(q.next()).rejects.toBe(err);
    const late = new ChunkQueue();
    late.end(err);
    await expect(late.concatenated()).rejects.toBe(err);
    await expect(late.all()).rejects.toBe(err);
  });

  test('every caller of concatenated() gets the same promise', () => {
    const q = new ChunkQueue();
    expect(q.concatenated()).toBe(q.concatenated());
    q.end();
    expect(q.all()).toBe(q.all());
  });
});
