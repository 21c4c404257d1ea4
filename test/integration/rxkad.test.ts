/**
 * rxkad end to end through the kernel, without a KDC: tickets are minted in
 * the test (test/rxkad/ticket.ts) with a server key the Node server installs
 * as an "rxrpc_s" key, and the client's token becomes an "rxrpc" key.
 *
 * Measured on Debian's 6.1.192, 6.12.95 and 7.3.4 (2026-12-02); the same on
 * all three unless a test says otherwise. Every test checks that the keys it
 * made are gone from /proc/keys afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, ClientOptions } from '../../lib/client';
import { Endpoint } from '../../lib/endpoint';
import { RxAbortError } from '../../lib/errors';
import { createServerKeyring, createTokenKey, LinuxKey } from '../../lib/security';
import { IncomingCall, Server, ServerOptions } from '../../lib/server';
import { ReceivedMessage } from '../../lib/socket';
import { mintToken, randomDesKey, TokenOptions } from '../rxkad/ticket';
import { bulkCall, freshPort } from './helpers';
import { keysGone, procKeys, revoked, serials } from './keys';
import { startCapture } from './tshark';

const address = '127.0.0.1';
// Jest gives every file its own copy of helpers.ts: this file takes a port range of its own.
const port = () => freshPort() + 3000;
const SERVICE = 2601;
const OTHER = 2602;

const serverKey = randomDesKey();
const otherKey = randomDesKey();
const token = (over: Partial<TokenOptions> = {}) => mintToken({ serverKey, kvno: 1, name: 'tester', ...over });

const clients: Client[] = [];
const servers: Server[] = [];
const owned: LinuxKey[] = [];
let before: Set<string>;

function client(options: ClientOptions = {}): Client {
  const c = new Client(options);
  clients.push(c);
  return c;
}

const echo = async (call: IncomingCall) => Buffer.concat([Buffer.from('re:'), await call.request()]);

function serve(options: Partial<ServerOptions> = {}, handler: (call: IncomingCall) => Promise<Uint8Array> = echo): Server {
  const server = new Server({
    address, port: port(), services: SERVICE, security: { keys: [{ secret: serverKey }] }, ...options,
  }, handler);
  servers.push(server);
  return server;
}

const to = (server: Server, service = SERVICE) => ({ address, port: server.port, service });
const refused = (abortName: string) => expect.objectContaining({ name: 'RxAbortError', code: 'ERR_RX_ABORT', abortName, local: false });

/** The first securityError a server reports. */
const securityError = (server: Server) => new Promise<RxAbortError>((resolve) => server.once('securityError', (e) => resolve(e)));

beforeEach(() => {
  before = serials();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
  for (const k of owned.splice(0)) k.close();
  await keysGone(before);
});

describe('rxkad calls between a Node client and a Node server', () => {
  test('rxkad: at clear, auth and encrypt the bytes arrive intact both ways', async () => {
    const server = serve();
    const t = token();
    for (const level of ['clear', 'auth', 'encrypt'] as const) {
      const body = randomBytes(3000);
      const reply = await client({ security: { token: t, level } }).call(to(server), body, { timeout: 20000 });
      expect(reply).toEqual({ data: Buffer.concat([Buffer.from('re:'), body]), service: SERVICE, peer: { address, port: server.port } });
    }
  });

  test('rxkad: 4 MiB each way at encrypt arrive intact', async () => {
    const server = serve();
    const body = randomBytes(4 << 20);
    // The echo's reply is 3 bytes over the default 4 MiB limit.
    const c = client({ security: { token: token(), level: 'encrypt' }, maxReplyBytes: Infinity });
    const reply = await bulkCall('rxkad 4 MiB at encrypt', () => c.call(to(server), body, { timeout: 90000 }));
    expect(reply.data.length).toBe(body.length + 3);
    expect(reply.data.subarray(3).equals(body)).toBe(true);
  }, 120000);

  test('rxkad: 4 MiB up at auth arrive intact', async () => {
    const server = serve({}, async (call) => Buffer.from(String((await call.request()).length)));
    const body = randomBytes(4 << 20);
    const c = client({ security: { token: token(), level: 'auth' } });
    const reply = await bulkCall('rxkad 4 MiB up at auth', () => c.call(to(server), body, { timeout: 90000 }));
    expect(reply.data.toString()).toBe(String(body.length));
  }, 120000);

  test('rxkad: per-call security: anonymous, auth and encrypt calls of one client each go through a local endpoint of their own', async () => {
    const ports: number[] = [];
    const server = serve({}, async (call) => {
      ports.push(call.peer.port);
      return call.request();
    });
    const t = token();
    const c = client({ security: { token: t, level: 'auth' } });
    const calls = [
      { security: null }, { security: undefined }, { security: { token: t, level: 'encrypt' as const } }, { security: undefined },
    ];
    for (const options of calls) await c.call(to(server), Buffer.from('x'), { ...options, timeout: 20000 });
    // The client's own level twice through one endpoint; anonymous and encrypt apart.
    expect(new Set(ports).size).toBe(3);
    expect(ports[1]).toBe(ports[3]);
  });

  test('rxkad: an XDR token key (cell and token list) serves as well as the v1 key', async () => {
    const server = serve();
    const key = createTokenKey('test.rxrpc', [{ type: 'rxkad', ...token(), viceId: 1000, primary: true }]);
    owned.push(key);
    expect(procKeys().find((k) => k.description.startsWith(`${key.description}:`))).toMatchObject({ type: 'rxrpc' });
    const reply = await client({ security: { key, level: 'encrypt' } }).call(to(server), Buffer.from('xdr'), { timeout: 20000 });
    expect(reply.data.toString()).toBe('re:xdr');
  });
});

describe('rxkad: tickets the kernel refuses', () => {
  test('rxkad: a ticket sealed with a key the server does not have is refused with RXKADBADTICKET, on both sides', async () => {
    const server = serve();
    const reported = securityError(server);
    const bad = mintToken({ serverKey: randomDesKey(), kvno: 1 });
    await expect(client({ security: { token: bad, level: 'auth' } }).call(to(server), Buffer.from('x'), { timeout: 20000 }))
      .rejects.toEqual(refused('RXKADBADTICKET'));
    await expect(reported).resolves.toEqual(refused('RXKADBADTICKET'));
  });

  test('rxkad: an expired ticket is refused with RXKADEXPIRED, on both sides', async () => {
    const server = serve();
    const reported = securityError(server);
    const now = Math.floor(Date.now() / 1000);
    // Issued two hours ago for one hour; the client's key itself is still valid.
    const expired = token({ issue: now - 7200, life: 12, expiry: now + 3600 });
    await expect(client({ security: { token: expired, level: 'auth' } }).call(to(server), Buffer.from('x'), { timeout: 20000 }))
      .rejects.toEqual(refused('RXKADEXPIRED'));
    await expect(reported).resolves.toEqual(refused('RXKADEXPIRED'));
  });

  test('rxkad: a ticket for another service (sealed with that service\'s key) is refused with RXKADBADTICKET', async () => {
    const server = serve({ services: [SERVICE, OTHER], security: { keys: [{ secret: serverKey, service: SERVICE }, { secret: otherKey, service: OTHER }] } });
    const forOther = mintToken({ serverKey: otherKey, kvno: 1 });
    const c = client({ security: { token: forOther, level: 'auth' } });
    // It is good for the other service...
    await expect(c.call(to(server, OTHER), Buffer.from('x'), { timeout: 20000 })).resolves.toMatchObject({ service: OTHER });
    // ...and not for this one.
    await expect(c.call(to(server, SERVICE), Buffer.from('x'), { timeout: 20000 })).rejects.toEqual(refused('RXKADBADTICKET'));
  });

  test('rxkad: the kernel does not read the service name inside a ticket: one naming another service, sealed with this key, is accepted', async () => {
    const server = serve();
    const named = token({ service: 'other', serviceInstance: 'cell' });
    await expect(client({ security: { token: named, level: 'auth' } }).call(to(server), Buffer.from('x'), { timeout: 20000 }))
      .resolves.toMatchObject({ data: Buffer.from('re:x') });
  });

  test('rxkad: a ticket issued in the future is refused with RXKADNOAUTH, a kvno of 256 (Kerberos 5) with RXKADUNKNOWNKEY', async () => {
    const server = serve();
    const now = Math.floor(Date.now() / 1000);
    const future = token({ issue: now + 3600, expiry: now + 7200 });
    await expect(client({ security: { token: future, level: 'auth' } }).call(to(server), Buffer.from('x'), { timeout: 20000 }))
      .rejects.toEqual(refused('RXKADNOAUTH'));
    await expect(client({ security: { token: token({ kvno: 256 }), level: 'auth' } }).call(to(server), Buffer.from('x'), { timeout: 20000 }))
      .rejects.toEqual(refused('RXKADUNKNOWNKEY'));
  });

  test('rxkad: a server whose keyring has no key for the service refuses callers with RXKADNOAUTH', async () => {
    const ring = createServerKeyring([OTHER], [{ secret: otherKey }]);
    owned.push(ring);
    const server = serve({ security: { keyring: ring } });
    await expect(client({ security: { token: token(), level: 'auth' } }).call(to(server), Buffer.from('x'), { timeout: 20000 }))
      .rejects.toEqual(refused('RXKADNOAUTH'));
  });
});

describe('rxkad: what the server can know and enforce', () => {
  test('rxkad: the kernel does not enforce a server\'s minimum level: anonymous, clear and auth callers are served by one set to encrypt, which warns', async () => {
    const warnings: string[] = [];
    const server = serve({ security: { keys: [{ secret: serverKey }], minimumLevel: 'encrypt' } });
    server.on('warning', (w) => warnings.push((w as Error & { code: string }).code));
    const t = token();
    for (const security of [undefined, { token: t, level: 'clear' as const }, { token: t, level: 'auth' as const }]) {
      await expect(client({ security }).call(to(server), Buffer.from('low'), { timeout: 20000 })).resolves.toMatchObject({ data: Buffer.from('re:low') });
    }
    expect(warnings).toEqual(['RXRPC_MIN_LEVEL_NOT_ENFORCED']);
  });

  test('rxkad: recvmsg says nothing of a call\'s security: a server sees the same control messages for anonymous and encrypted calls', async () => {
    const ring = createServerKeyring([SERVICE], [{ secret: serverKey }]);
    owned.push(ring);
    const p = port();
    const endpoint = new Endpoint({ family: 'IPv4' });
    try {
      endpoint.raw.setSecurityKeyring(ring.description);
      endpoint.raw.bind({ service: SERVICE, address, port: p });
      endpoint.listen(4);
      const seen = new Map<number, Array<Pick<ReceivedMessage, 'kind' | 'unknown' | 'service' | 'end'>>>();
      endpoint.raw.on('message', (m) => {
        const list = seen.get(m.callId) ?? [];
        list.push({ kind: m.kind, unknown: m.unknown, service: m.service, end: m.end });
        seen.set(m.callId, list);
      });
      const done: Array<Promise<void>> = [];
      endpoint.on('call', (call) => {
        call.ondata = (_chunk, end) => {
          if (end) call.write(Buffer.from('ok'), false);
        };
        done.push(new Promise((resolve) => (call.ondone = () => resolve())));
      });
      const target = { address, port: p, service: SERVICE };
      await client().call(target, Buffer.from('plain'), { timeout: 20000 });
      await client({ security: { token: token(), level: 'encrypt' } }).call(target, Buffer.from('sealed'), { timeout: 20000 });
      // The server's side ends when the client acknowledges the reply.
      await Promise.all(done);
      const [plain, sealed] = [...seen.values()];
      expect(plain).toEqual([{ kind: 'data', unknown: [], service: SERVICE, end: false }, { kind: 'ack', unknown: [], service: SERVICE, end: true }]);
      expect(sealed).toEqual(plain);
    } finally {
      endpoint.close();
    }
  });

  test('rxkad: at encrypt a packet capture holds no plaintext of the request or the reply; at auth it holds both', async () => {
    // Rows: source port, rx.type, rx.securityindex, UDP payload (hex).
    const server = serve();
    const marker = `rxkad-capture-${randomBytes(6).toString('hex')}`;
    const request = Buffer.from(marker.repeat(8));
    const capture = await startCapture(server.port, ['rx.type', 'rx.securityindex', 'udp.payload']);
    const t = token();
    try {
      await client({ security: { token: t, level: 'encrypt' } }).call(to(server), request, { timeout: 20000 });
      await capture.stop();
    } catch (err) {
      await capture.stop();
      throw err;
    }
    const hex = Buffer.from(marker).toString('hex');
    const rows = capture.rows.filter((r) => Number(r[0]) !== capture.marker);
    const from = (list: string[][], server: boolean) => list.filter((r) => (Number(r[0]) === capture.port) === server).map((r) => r[3]).join('');
    expect(from(rows, false)).not.toContain(hex);
    expect(from(rows, true)).not.toContain(hex);
    // It was rxkad: a CHALLENGE (6) and a RESPONSE (7), and DATA (1) under security index 2.
    expect(rows.filter((r) => r[1] === '6' || r[1] === '7').length).toBeGreaterThanOrEqual(2);
    expect(rows.filter((r) => r[1] === '1').every((r) => r[2] === '2')).toBe(true);

    // The same call at auth: checksummed, not sealed.
    const control = await startCapture(server.port, ['rx.type', 'rx.securityindex', 'udp.payload']);
    try {
      await client({ security: { token: t, level: 'auth' } }).call(to(server), request, { timeout: 20000 });
    } finally {
      await control.stop();
    }
    // Only the first 8 bytes of each packet (the length header and 4 bytes of
    // data) are sealed at auth; the marker repeats, so it shows both ways.
    const clear = control.rows.filter((r) => Number(r[0]) !== control.marker);
    expect(from(clear, false)).toContain(hex);
    expect(from(clear, true)).toContain(hex);
  });
});

describe('rxkad keys made from Node', () => {
  test('rxkad: a client\'s and a server\'s keys are in /proc/keys while in use, revoked as they close, and then gone', async () => {
    const server = serve();
    const c = client({ security: { token: token(), level: 'encrypt' } });
    await c.call(to(server), Buffer.from('x'), { timeout: 20000 });
    const made = procKeys().filter((k) => !before.has(k.serial));
    // The client's token key, the server's keyring and its "<service>:2" key.
    expect(made.map((k) => k.type).sort()).toEqual(['keyring', 'rxrpc', 'rxrpc_s']);
    expect(made.find((k) => k.type === 'rxrpc_s')!.description).toMatch(/^2601:2/);
    expect(made.find((k) => k.type === 'rxrpc')!.description).toMatch(/^rxrpc-client:\d+:[0-9a-f]+:\d+: ka$/);
    c.close();
    await server.close();
    // Revoked at once (nothing can use them from here), destroyed once the
    // kernel's connections let go of them.
    const left = procKeys().filter((k) => made.some((m) => m.serial === k.serial));
    expect(left.filter((k) => !revoked(k)).map((k) => k.line)).toEqual([]);
    await keysGone(before);
  });

  test('rxkad: a weak DES server key is refused before anything reaches the kernel', () => {
    expect(() => serve({ security: { keys: [{ secret: Buffer.from('fefefefefefefefe', 'hex') }] } }))
      .toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options.security.keys[0].secret') }));
    expect(procKeys().filter((k) => !before.has(k.serial))).toEqual([]);
  });
});

test('rxkad: the README\'s security example runs as written (against the built package)', () => {
  const root = join(__dirname, '..', '..', '..');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const example = /### Security\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)![1];
  const file = '/tmp/readme-security.mjs';
  writeFileSync(file, example.replace("from 'rxrpc'", `from ${JSON.stringify(join(root, 'build', 'lib', 'index.js'))}`));
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
  expect(out.trim().split('\n')).toEqual(['hello, alice', 'hello, anonymous']);
});
