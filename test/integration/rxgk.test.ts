/**
 * The RxGK interface (Linux about 6.16 on): RXRPC_MANAGE_RESPONSE, the answer
 * to a challenge, YFS-RxGK keys, and RxGK calls. Debian's 7.3 is built
 * without CONFIG_RXGK, so its stock module makes no RxGK connection and no
 * challenge reaches user space; 6.1 and 6.12 predate the interface. The fixed
 * 7.3 module (kernel/build.sh) is built with RxGK and lets sendmsg(MSG_OOB)
 * through, and there RxGK calls are made with tokens minted from the
 * service's key. Expectations are chosen by RXRPC_VM_KERNEL (uname -r) and
 * RXRPC_VM_RXGK (whether the loaded module has RxGK, from its build).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { Client, ClientOptions } from '../../lib/client';
import { RXRPC_MANAGE_RESPONSE, SOL_RXRPC } from '../../lib/constants';
import { Endpoint } from '../../lib/endpoint';
import { RxAbortError } from '../../lib/errors';
import {
  createServerKeyring, createTokenKey, LinuxKey, mintRxgkToken, RxgkMintOptions, SecurityLevel,
} from '../../lib/security';
import { NativeSocket } from '../../lib/native';
import { Server } from '../../lib/server';
import { RawSocket } from '../../lib/socket';
import { mintToken, randomDesKey } from '../rxkad/ticket';
import { freshPort } from './helpers';
import { keysGone, serials } from './keys';
import { startCapture } from './tshark';

const address = '127.0.0.1';
const port = () => freshPort() + 3500;
const [major, minor] = (process.env.RXRPC_VM_KERNEL ?? '').split(/[.+-]/).map(Number);
const hasOob = major > 6 || (major === 6 && minor >= 16);
const hasRxgk = process.env.RXRPC_VM_RXGK === 'yes';
const ERRNO: Record<string, number> = { ...constants.errno, ENOPKG: 65, EKEYREJECTED: 129, EBADSLT: 57 };
const sysError = (code: string, syscall: string) => expect.objectContaining({ code, errno: -ERRNO[code], syscall });
const nativeOf = (s: RawSocket) => (s as unknown as { native: NativeSocket }).native;
const u32 = (v: number) => Buffer.from(Uint32Array.of(v).buffer);
const SERVICE = 2704;
const SERVER_KEY = randomBytes(32);
const SERVER_KEY_128 = randomBytes(16);
const refused = (abortName: string) => expect.objectContaining({ name: 'RxAbortError', code: 'ERR_RX_ABORT', abortName, local: false });
const securityError = (server: Server) => new Promise<RxAbortError>((resolve) => server.once('securityError', (e) => resolve(e)));
const to = (server: Server) => ({ address, port: server.port, service: SERVICE });
const echo = async (call: { request(): Promise<Buffer> }) => Buffer.concat([Buffer.from('re:'), await call.request()]);

/** A Node server for SERVICE holding these YFS-RxGK keys, echoing. */
function rxgkServer(keys: Array<{ kvno: number; enctype: number; secret: Buffer }>): Server {
  const server = new Server({
    address, port: port(), services: SERVICE, security: { keys: keys.map((k) => ({ type: 'yfs-rxgk' as const, ...k })) },
  }, echo);
  made.push(server);
  return server;
}

/** A client key for a token minted with the service key (kvno 1, enctype 20 unless told). */
function rxgkKey(over: Partial<RxgkMintOptions> = {}): LinuxKey {
  const key = createTokenKey('test.rxrpc', [mintRxgkToken({ serverKey: SERVER_KEY, kvno: 1, enctype: 20, ...over })]);
  made.push(key);
  return key;
}

function rxgkClient(key: LinuxKey, level: SecurityLevel = 'encrypt', options: ClientOptions = {}): Client {
  const client = new Client({ ...options, security: { key, level } });
  made.push(client);
  return client;
}

let before: Set<string>;
const made: Array<{ close(): unknown }> = [];
beforeEach(() => {
  before = serials();
});
afterEach(async () => {
  for (const m of made.splice(0).reverse()) await m.close();
  await keysGone(before);
});

describe('RxGK', () => {
  test(`RxGK: RXRPC_MANAGE_RESPONSE ${hasOob ? 'takes 0 and 1 before bind and refuses 2, a short value and a bound socket' : 'is an unknown option here, accepted silently'}`, () => {
    const open = () => {
      const s = new RawSocket();
      made.push(s);
      return s;
    };
    expect(() => open().setManageResponse(true)).not.toThrow();
    expect(() => open().setManageResponse(false)).not.toThrow();
    const bound = open();
    bound.bind({ service: 0, address: '0.0.0.0', port: port() });
    if (hasOob) {
      expect(() => nativeOf(open()).setsockopt(SOL_RXRPC, RXRPC_MANAGE_RESPONSE, u32(2))).toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => nativeOf(open()).setsockopt(SOL_RXRPC, RXRPC_MANAGE_RESPONSE, Buffer.alloc(2))).toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => bound.setManageResponse(true)).toThrow(sysError('EISCONN', 'setsockopt'));
    } else {
      expect(() => nativeOf(open()).setsockopt(SOL_RXRPC, RXRPC_MANAGE_RESPONSE, u32(2))).not.toThrow();
      expect(() => bound.setManageResponse(true)).not.toThrow();
    }
    expect(() => open().setManageResponse(1 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  test('RxGK: with MANAGE_RESPONSE set an rxkad call still succeeds, and no challenge reaches the socket (the kernel answers rxkad\'s)', async () => {
    const serverKey = randomDesKey();
    const server = new Server({ address, port: port(), services: 2701, security: { keys: [{ secret: serverKey }] } },
      async (call) => call.request());
    made.push(server);
    const key = createTokenKey('test.rxrpc', [{ type: 'rxkad', ...mintToken({ serverKey, kvno: 1 }) }]);
    made.push(key);
    const { reply, challenges, kinds } = await managedCall(server, key, () => undefined, 2701);
    expect(reply.toString()).toBe('managed');
    expect(challenges).toEqual([]);
    expect(kinds.every((k) => k === 'data')).toBe(true);
  });

  // errno 95: EOPNOTSUPP in the kernel headers, ENOTSUP to Node (and to this library).
  test(hasRxgk
    ? 'RxGK: answering a challenge (sendmsg with MSG_OOB) reaches the OOB handler: an unknown OOB ID is refused with EBADSLT'
    : 'RxGK: answering a challenge (sendmsg with MSG_OOB) is refused with errno 95 (EOPNOTSUPP) on every stock kernel of the matrix', () => {
    const s = new RawSocket();
    made.push(s);
    const code = hasRxgk ? 'EBADSLT' : 'ENOTSUP';
    expect(() => s.respondToChallenge(1n)).toThrow(sysError(code, 'sendmsg'));
    expect(() => s.respondToChallenge(1n, Buffer.from('appdata'))).toThrow(sysError(code, 'sendmsg'));
    expect(() => s.rejectChallenge(1n, 1233242884)).toThrow(sysError(code, 'sendmsg'));
  });

  test(hasRxgk
    ? 'RxGK: a YFS-RxGK server key is installed, and /proc/keys names its enctype'
    : 'RxGK: a YFS-RxGK server key is refused with ENOPKG (no RxGK security class in these kernels)', () => {
    const keys = [{ type: 'yfs-rxgk' as const, kvno: 1, enctype: 18, secret: Buffer.alloc(32, 7) }];
    if (!hasRxgk) {
      let ring: LinuxKey | undefined;
      expect(() => {
        ring = createServerKeyring([2702], keys);
      }).toThrow(sysError('ENOPKG', 'add_key'));
      expect(ring).toBeUndefined();
      return;
    }
    const ring = createServerKeyring([2702], keys);
    made.push(ring);
    const line = readFileSync('/proc/keys', 'utf8').split('\n').find((l) => / rxrpc_s +2702:6:1:18: /.test(l));
    expect(line).toMatch(/aes256-cts-hmac-sha1-96/);
  });

  test(`RxGK: a YFS-RxGK client token ${hasRxgk ? 'whose ticket is not a token container is refused by the server with RXGK_PACKETSHORT' : hasOob ? 'makes a key, but a call with it fails with EKEYREJECTED' : 'is refused with EPROTONOSUPPORT'}`, async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = [{
      type: 'yfs-rxgk' as const, begin: now - 60, end: now + 3600, level: 'encrypt' as const, enctype: 18,
      key: Buffer.alloc(32, 5), ticket: Buffer.alloc(64, 6),
    }];
    if (!hasOob) {
      expect(() => createTokenKey('test.rxrpc', tokens)).toThrow(sysError('EPROTONOSUPPORT', 'add_key'));
      return;
    }
    const key = createTokenKey('test.rxrpc', tokens);
    made.push(key);
    const client = new Client({ security: { key } });
    made.push(client);
    if (!hasRxgk) {
      await expect(client.call({ address, port: port(), service: 2703 }, Buffer.from('x'), { timeout: 20000 }))
        .rejects.toEqual(sysError('EKEYREJECTED', 'sendmsg'));
      return;
    }
    // Read as a token container, the 64 bytes of 6 claim a token of 0x06060606 bytes.
    const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
    const reported = securityError(server);
    await expect(client.call(to(server), Buffer.from('x'), { timeout: 20000 })).rejects.toEqual(refused('RXGK_PACKETSHORT'));
    await expect(reported).resolves.toEqual(refused('RXGK_PACKETSHORT'));
  });
});

/** One call through an Endpoint that manages its own challenges; `answer` decides what to do with each. */
async function managedCall(server: Server, key: LinuxKey, answer: (endpoint: Endpoint, c: { oobId: bigint; challenge: unknown }) => void,
  service = SERVICE): Promise<{ reply: Buffer; challenges: unknown[]; kinds: string[] }> {
  const endpoint = new Endpoint({ family: 'IPv4' });
  made.push(endpoint);
  endpoint.raw.setSecurityKey(key.description);
  endpoint.raw.setMinSecurityLevel(2);
  endpoint.raw.setManageResponse(true);
  endpoint.raw.bind({ service: 0, address: '0.0.0.0', port: port() });
  const challenges: unknown[] = [];
  const kinds: string[] = [];
  endpoint.on('challenge', (c) => {
    challenges.push(c.challenge);
    answer(endpoint, c);
  });
  endpoint.raw.on('message', (m) => kinds.push(m.kind));
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const call = endpoint.startCall({ address, port: server.port, service }, Buffer.from('managed'), false);
    const chunks: Buffer[] = [];
    call.ondata = (chunk) => chunks.push(chunk);
    call.ondone = (err) => (err ? reject(err) : resolve(Buffer.concat(chunks)));
  });
  return { reply, challenges, kinds };
}

if (hasRxgk) {
  describe('RxGK calls (a module built with RxGK)', () => {
    test.each([
      [20, 'encrypt'], [20, 'auth'], [19, 'encrypt'], [19, 'auth'],
    ] as const)('RxGK: enctype %d at %s: a call between a Node client and a Node server arrives intact both ways', async (enctype, level) => {
      const secret = enctype === 19 ? SERVER_KEY_128 : SERVER_KEY;
      const server = rxgkServer([{ kvno: 3, enctype, secret }]);
      const client = rxgkClient(rxgkKey({ serverKey: secret, kvno: 3, enctype, level }), level);
      const request = randomBytes(3000);
      const reply = await client.call(to(server), request, { timeout: 30000 });
      expect(reply.data.equals(Buffer.concat([Buffer.from('re:'), request]))).toBe(true);
    });

    test('RxGK: 1 MiB each way at encrypt arrives intact, and a second call reuses the secured connection', async () => {
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const client = rxgkClient(rxgkKey(), 'encrypt', { maxReplyBytes: Infinity });
      const request = randomBytes(1 << 20);
      const reply = await client.call(to(server), request, { timeout: 120000 });
      expect(reply.data.subarray(3).equals(request)).toBe(true);
      expect((await client.call(to(server), Buffer.from('again'), { timeout: 30000 })).data.toString()).toBe('re:again');
    });

    test('RxGK: a Client given the minted token itself (security.token) calls at the token\'s level, and revokes the key it made on close', async () => {
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const client = new Client({ security: { token: mintRxgkToken({ serverKey: SERVER_KEY, kvno: 1, enctype: 20, level: 'auth' }) } });
      made.push(client);
      expect((await client.call(to(server), Buffer.from('token'), { timeout: 30000 })).data.toString()).toBe('re:token');
      // afterEach's keysGone() checks the key is gone once the client has closed.
    });

    test('RxGK: a token sealed with a key the server does not have is refused with RXGK_SEALEDINCON, on both sides', async () => {
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const reported = securityError(server);
      const client = rxgkClient(rxgkKey({ serverKey: randomBytes(32) }));
      await expect(client.call(to(server), Buffer.from('x'), { timeout: 20000 })).rejects.toEqual(refused('RXGK_SEALEDINCON'));
      await expect(reported).resolves.toEqual(refused('RXGK_SEALEDINCON'));
    });

    // Not RXGK_BADKEYNO: keyring_search() says "not found" with EAGAIN, which
    // rxgk_extract_token() does not list among the missing-key errors.
    test('RxGK: a token for a key version the server lacks is refused with RXGK_NOTAUTH, on both sides', async () => {
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const reported = securityError(server);
      const client = rxgkClient(rxgkKey({ kvno: 2 }));
      await expect(client.call(to(server), Buffer.from('x'), { timeout: 20000 })).rejects.toEqual(refused('RXGK_NOTAUTH'));
      await expect(reported).resolves.toEqual(refused('RXGK_NOTAUTH'));
    });

    test('RxGK: a server with keys of two versions serves tokens of both', async () => {
      const old = randomBytes(32);
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: old }, { kvno: 2, enctype: 20, secret: SERVER_KEY }]);
      for (const [kvno, serverKey] of [[1, old], [2, SERVER_KEY]] as const) {
        const reply = await rxgkClient(rxgkKey({ kvno, serverKey })).call(to(server), Buffer.from(`v${kvno}`), { timeout: 30000 });
        expect(reply.data.toString()).toBe(`re:v${kvno}`);
      }
    });

    test('RxGK: with MANAGE_RESPONSE the challenge reaches user space (service, index 6, enctype), and answering it with appdata completes the call', async () => {
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const { reply, challenges } = await managedCall(server, rxgkKey(), (endpoint, c) =>
        endpoint.raw.respondToChallenge(c.oobId, Buffer.from('application data')));
      expect(reply.toString()).toBe('re:managed');
      expect(challenges).toEqual([expect.objectContaining({ service: SERVICE, securityIndex: 6, enctype: 20 })]);
    });

    test('RxGK: at encrypt a packet capture holds no plaintext of the request or the reply; at auth it holds both; the token\'s level wins over the socket\'s', async () => {
      // Rows: source port, rx.type, rx.securityindex, UDP payload (hex).
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const marker = `rxgk-capture-${randomBytes(6).toString('hex')}`;
      const request = Buffer.from(marker.repeat(8));
      const hex = Buffer.from(marker).toString('hex');
      const captured = async (level: SecurityLevel, socketLevel = level) => {
        const capture = await startCapture(server.port, ['rx.type', 'rx.securityindex', 'udp.payload']);
        try {
          await rxgkClient(rxgkKey({ level }), socketLevel).call(to(server), request, { timeout: 30000 });
        } finally {
          await capture.stop();
        }
        const rows = capture.rows.filter((r) => Number(r[0]) !== capture.marker);
        const from = (server: boolean) => rows.filter((r) => (Number(r[0]) === capture.port) === server).map((r) => r[3]).join('');
        return { rows, up: from(false), down: from(true) };
      };
      const sealed = await captured('encrypt');
      expect(sealed.up).not.toContain(hex);
      expect(sealed.down).not.toContain(hex);
      // It was RxGK: a CHALLENGE (6) and a RESPONSE (7), and DATA (1) under security index 6.
      expect(sealed.rows.filter((r) => r[1] === '6' || r[1] === '7').length).toBeGreaterThanOrEqual(2);
      expect(sealed.rows.filter((r) => r[1] === '1').length).toBeGreaterThan(0);
      expect(sealed.rows.filter((r) => r[1] === '1').every((r) => r[2] === '6')).toBe(true);
      // At auth the packets are checksummed, not sealed.
      const clear = await captured('auth');
      expect(clear.up).toContain(hex);
      expect(clear.down).toContain(hex);
      // The kernel runs an RxGK connection at its token's level, whatever the socket's
      // RXRPC_MIN_SECURITY_LEVEL says (rxgk_init_connection_security): still sealed.
      const tokenWins = await captured('encrypt', 'auth');
      expect(tokenWins.up).not.toContain(hex);
      expect(tokenWins.down).not.toContain(hex);
    });

    test('RxGK: refusing the challenge aborts the call with the code given', async () => {
      const server = rxgkServer([{ kvno: 1, enctype: 20, secret: SERVER_KEY }]);
      const code = 1233242884; // RXGK_NOTAUTH
      await expect(managedCall(server, rxgkKey(), (endpoint, c) => endpoint.raw.rejectChallenge(c.oobId, code)))
        .rejects.toEqual(expect.objectContaining({ code: 'ERR_RX_ABORT', abortCode: code }));
    });
  });
}
