/**
 * The RxGK interface (Linux about 6.16 on) where Debian's kernels let it be
 * tested: RXRPC_MANAGE_RESPONSE, the answer to a challenge, and YFS-RxGK
 * keys. Debian's 7.3 is built without CONFIG_RXGK, so no RxGK connection can
 * be made and no challenge reaches user space; 6.1 and 6.12 predate the
 * interface. Expectations are chosen by RXRPC_VM_KERNEL (uname -r).
 */
import { constants } from 'node:os';
import { Client } from '../../lib/client';
import { RXRPC_MANAGE_RESPONSE, SOL_RXRPC } from '../../lib/constants';
import { Endpoint } from '../../lib/endpoint';
import { createServerKeyring, createTokenKey, LinuxKey } from '../../lib/security';
import { NativeSocket } from '../../lib/native';
import { Server } from '../../lib/server';
import { RawSocket } from '../../lib/socket';
import { mintToken, randomDesKey } from '../rxkad/ticket';
import { freshPort } from './helpers';
import { keysGone, serials } from './keys';

const address = '127.0.0.1';
const port = () => freshPort() + 3500;
const [major, minor] = (process.env.RXRPC_VM_KERNEL ?? '').split(/[.+-]/).map(Number);
const hasOob = major > 6 || (major === 6 && minor >= 16);
const ERRNO: Record<string, number> = { ...constants.errno, ENOPKG: 65, EKEYREJECTED: 129 };
const sysError = (code: string, syscall: string) => expect.objectContaining({ code, errno: -ERRNO[code], syscall });
const nativeOf = (s: RawSocket) => (s as unknown as { native: NativeSocket }).native;
const u32 = (v: number) => Buffer.from(Uint32Array.of(v).buffer);

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
    const endpoint = new Endpoint({ family: 'IPv4' });
    made.push(endpoint);
    endpoint.raw.setSecurityKey(key.description);
    endpoint.raw.setMinSecurityLevel(2);
    endpoint.raw.setManageResponse(true);
    endpoint.raw.bind({ service: 0, address: '0.0.0.0', port: port() });
    const challenges: unknown[] = [];
    const kinds: string[] = [];
    endpoint.on('challenge', (c) => challenges.push(c));
    endpoint.raw.on('message', (m) => kinds.push(m.kind));
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const call = endpoint.startCall({ address, port: server.port, service: 2701 }, Buffer.from('managed'), false);
      const chunks: Buffer[] = [];
      call.ondata = (chunk) => chunks.push(chunk);
      call.ondone = (err) => (err ? reject(err) : resolve(Buffer.concat(chunks)));
    });
    expect(reply.toString()).toBe('managed');
    expect(challenges).toEqual([]);
    expect(kinds.every((k) => k === 'data')).toBe(true);
  });

  // errno 95: EOPNOTSUPP in the kernel headers, ENOTSUP to Node (and to this library).
  test('RxGK: answering a challenge (sendmsg with MSG_OOB) is refused with errno 95 (EOPNOTSUPP) on every kernel of the matrix', () => {
    const s = new RawSocket();
    made.push(s);
    expect(() => s.respondToChallenge(1n)).toThrow(sysError('ENOTSUP', 'sendmsg'));
    expect(() => s.respondToChallenge(1n, Buffer.from('appdata'))).toThrow(sysError('ENOTSUP', 'sendmsg'));
    expect(() => s.rejectChallenge(1n, 1233242884)).toThrow(sysError('ENOTSUP', 'sendmsg'));
  });

  test('RxGK: a YFS-RxGK server key is refused with ENOPKG (no RxGK security class in these kernels)', () => {
    let ring: LinuxKey | undefined;
    expect(() => {
      ring = createServerKeyring([2702], [{ type: 'yfs-rxgk', kvno: 1, enctype: 18, secret: Buffer.alloc(32, 7) }]);
    }).toThrow(sysError('ENOPKG', 'add_key'));
    expect(ring).toBeUndefined();
  });

  test(`RxGK: a YFS-RxGK client token ${hasOob ? 'makes a key, but a call with it fails with EKEYREJECTED' : 'is refused with EPROTONOSUPPORT'}`, async () => {
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
    await expect(client.call({ address, port: port(), service: 2703 }, Buffer.from('x'), { timeout: 20000 }))
      .rejects.toEqual(sysError('EKEYREJECTED', 'sendmsg'));
  });
});
