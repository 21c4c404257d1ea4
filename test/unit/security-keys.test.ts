/**
 * Key payloads, their validation, and how Client and Server make, set and
 * revoke keys, on the host: a fake key table stands in for add_key/keyctl
 * and the fake kernel for the sockets, so the order of the system calls can
 * be checked.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '../../lib/client';
import { RXRPC_MIN_SECURITY_LEVEL, RXRPC_SECURITY_KEY, RXRPC_SECURITY_KEYRING, SOL_RXRPC } from '../../lib/constants';
import { NativeBinding, NativeKeys } from '../../lib/native';
import { createKeyring, LinuxKey } from '../../lib/security/keyring';
import { createRxkadKey, createServerKeyring, mintRxgkToken } from '../../lib/security';
import {
  checkClientSecurity, checkServerSecurity, isSecurityAbortCode, minimumLevelWarning,
} from '../../lib/security/options';
import {
  encodeRxkadV1Payload, encodeXdrTokenPayload, isWeakDesKey, RxkadToken, rxkadServerKey, yfsRxgkServerKey,
} from '../../lib/security/rxkad';
import { Server } from '../../lib/server';
import { FakeKernel } from '../fake-kernel';

const hex = (s: string) => Buffer.from(s, 'hex');
const SESSION = hex('2a3b4c5d6e7f8091');
const SECRET = hex('9e2c7a4f1d3b5e6d');
const future = () => Math.floor(Date.now() / 1000) + 3600;
const token = (over: Partial<RxkadToken> = {}): RxkadToken => ({
  kvno: 7, sessionKey: SESSION, ticket: Buffer.from('0123456789abcdef'), expiry: future(), ...over,
});
const invalid = (code: string, argument: string) =>
  expect.objectContaining({ code, message: expect.stringContaining(argument) });

/** add_key and keyctl, as a table; every call is logged. */
class FakeKeys implements NativeKeys {
  readonly log: string[] = [];
  readonly table = new Map<number, { type: string; description: string; payload: Buffer | null; revoked: boolean }>();
  private next = 1000;
  addKey(type: string, description: string, payload: Uint8Array | null, keyring: number): number {
    const serial = this.next++;
    this.table.set(serial, { type, description, payload: payload && Buffer.from(payload), revoked: false });
    this.log.push(`add_key ${type} ${description} -> ${keyring}`);
    return serial;
  }
  getKeyringId(id: number): number {
    return id;
  }
  revokeKey(serial: number): void {
    this.table.get(serial)!.revoked = true;
    this.log.push(`revoke ${this.table.get(serial)!.description}`);
  }
  invalidateKey(): void {}
  unlinkKey(serial: number, keyring: number): void {
    this.log.push(`unlink ${this.table.get(serial)!.description} <- ${keyring}`);
  }
  describeKey(serial: number): string {
    const k = this.table.get(serial)!;
    return `${k.type};0;0;3f010000;${k.description}`;
  }
  readKey(serial: number): Buffer {
    return this.table.get(serial)!.payload ?? Buffer.alloc(0);
  }
  searchKey(): number {
    return -1;
  }
}

/** The fake kernel's binding with key support and a log of setsockopt and bind. */
function bindingWithKeys(kernel: FakeKernel, keys: FakeKeys): NativeBinding {
  const base = kernel.binding;
  const log = keys.log;
  let sockets = 0;
  class Socket extends base.Socket {
    private readonly n = ++sockets;
    override setsockopt(level: number, name: number, value: Uint8Array | null): void {
      const v = name === RXRPC_SECURITY_KEY || name === RXRPC_SECURITY_KEYRING ? Buffer.from(value!).toString()
        : Buffer.from(value!).readUInt32LE(0);
      if (level === SOL_RXRPC) log.push(`socket ${this.n} setsockopt ${name} ${v}`);
      super.setsockopt(level, name, value);
    }
    override bind(sockaddr: Uint8Array): void {
      log.push(`socket ${this.n} bind service ${sockaddr[2] | (sockaddr[3] << 8)}`);
      super.bind(sockaddr);
    }
  }
  return { ...base, Socket, keys };
}

describe('rxkad client key payloads', () => {
  test('v1: version 1, index 2, ticket length, expiry, kvno, session key, ticket, in host order', () => {
    const t = token({ expiry: 0x7a000001 });
    const p = encodeRxkadV1Payload(t);
    expect(p.length).toBe(24 + 16);
    expect([p.readUInt32LE(0), p.readUInt16LE(4), p.readUInt16LE(6), p.readUInt32LE(8), p.readUInt32LE(12)])
      .toEqual([1, 2, 16, 0x7a000001, 7]);
    expect(p.subarray(16, 24)).toEqual(SESSION);
    expect(p.subarray(24)).toEqual(Buffer.from(t.ticket));
  });

  test('XDR: flags, cell, token count, then length-prefixed tokens, big-endian and padded', () => {
    const now = Math.floor(Date.now() / 1000);
    const p = encodeXdrTokenPayload('test.cell', [
      { type: 'rxkad', ...token({ ticket: Buffer.from('12345') }), viceId: 1000, start: now - 10, primary: true },
      { type: 'yfs-rxgk', begin: now - 10, end: now + 60, level: 'encrypt', enctype: 18, key: Buffer.alloc(32, 1), ticket: Buffer.from('tk') },
    ]);
    let off = 0;
    const u32 = () => { const v = p.readUInt32BE(off); off += 4; return v; };
    const opaque = () => { const n = u32(); const b = p.subarray(off, off + n); off += (n + 3) & ~3; return b; };
    expect(u32()).toBe(0);
    expect(opaque().toString()).toBe('test.cell');
    expect(u32()).toBe(2);
    const rxkad = opaque();
    expect(rxkad.length).toBe(4 + 8 * 4 + 8); // index, 8 words, ticket padded to 8
    expect([0, 1, 2].map((i) => rxkad.readUInt32BE(4 * i))).toEqual([2, 1000, 7]);
    expect(rxkad.subarray(12, 20)).toEqual(SESSION);
    expect([rxkad.readUInt32BE(20), rxkad.readUInt32BE(28), rxkad.readUInt32BE(32)]).toEqual([now - 10, 1, 5]);
    const gk = opaque();
    expect(gk.readUInt32BE(0)).toBe(6);
    expect(gk.readBigInt64BE(4)).toBe(BigInt(now - 10) * 10000000n); // begin, 100 ns units
    expect(gk.readBigInt64BE(20)).toBe(2n); // level
    expect(gk.readBigInt64BE(44)).toBe(18n); // enctype
    expect(gk.readUInt32BE(52)).toBe(32); // key length
    expect(off).toBe(p.length);
  });

  test('weak and semi-weak DES keys are known with or without parity bits', () => {
    for (const k of ['0101010101010101', '0000000000000000', 'fefefefefefefefe', '1fe01fe00ef10ef1', 'e0fee0fef1fef1fe']) {
      expect(isWeakDesKey(hex(k))).toBe(true);
    }
    expect(isWeakDesKey(SESSION)).toBe(false);
  });

  test.each([
    ['a weak session key', { sessionKey: hex('0101010101010101') }, 'ERR_INVALID_ARG_VALUE', 'token.sessionKey'],
    ['a semi-weak session key', { sessionKey: hex('01fe01fe01fe01fe') }, 'ERR_INVALID_ARG_VALUE', 'token.sessionKey'],
    ['a 7-byte session key', { sessionKey: Buffer.alloc(7, 0x31) }, 'ERR_OUT_OF_RANGE', 'token.sessionKey.length'],
    ['a string session key', { sessionKey: 'abcdefgh' as never }, 'ERR_INVALID_ARG_TYPE', 'token.sessionKey'],
    ['an empty ticket', { ticket: Buffer.alloc(0) }, 'ERR_OUT_OF_RANGE', 'token.ticket.length'],
    ['a ticket over 12000 bytes', { ticket: Buffer.alloc(12001) }, 'ERR_OUT_OF_RANGE', 'token.ticket.length'],
    ['a negative kvno', { kvno: -1 }, 'ERR_OUT_OF_RANGE', 'token.kvno'],
    ['a kvno over 32 bits', { kvno: 2 ** 32 }, 'ERR_OUT_OF_RANGE', 'token.kvno'],
    ['an expiry in the past', { expiry: 1000 }, 'ERR_OUT_OF_RANGE', 'token.expiry'],
    ['an expired Date', { expiry: new Date(Date.now() - 1000) }, 'ERR_OUT_OF_RANGE', 'token.expiry'],
    ['an invalid Date', { expiry: new Date(NaN) }, 'ERR_INVALID_ARG_VALUE', 'token.expiry'],
  ])('%s is refused, naming the value', (_what, over, code, argument) => {
    expect(() => encodeRxkadV1Payload(token(over as Partial<RxkadToken>))).toThrow(invalid(code, argument));
  });

  test.each([
    ['an empty cell', '', [{ type: 'rxkad', ...token() }], 'cell'],
    ['a cell of 65 characters', 'c'.repeat(65), [{ type: 'rxkad', ...token() }], 'cell'],
    ['no tokens', 'cell', [], 'tokens.length'],
    ['nine tokens', 'cell', Array(9).fill({ type: 'rxkad', ...token() }), 'tokens.length'],
    ['an unknown token type', 'cell', [{ type: 'rxk5' }], 'tokens[0].type'],
    ['an RxGK key of the wrong length', 'cell', [{ type: 'yfs-rxgk', begin: 1, end: 2, level: 'auth', enctype: 18, key: Buffer.alloc(16), ticket: Buffer.alloc(4) }], 'tokens[0].key.length'],
    ['an enctype Linux does not know', 'cell', [{ type: 'yfs-rxgk', begin: 1, end: 2, level: 'auth', enctype: 23, key: Buffer.alloc(16), ticket: Buffer.alloc(4) }], 'tokens[0].enctype'],
    ['an RxGK token ending before it begins', 'cell', [{ type: 'yfs-rxgk', begin: 10, end: 5, level: 'auth', enctype: 17, key: Buffer.alloc(16), ticket: Buffer.alloc(4) }], 'tokens[0].end'],
    ['more than 16384 bytes', 'cell', [{ type: 'rxkad', ...token({ ticket: Buffer.alloc(12000) }) }, { type: 'rxkad', ...token({ ticket: Buffer.alloc(12000) }) }], 'tokens'],
  ])('XDR: %s is refused, naming the value', (_what, cell, tokens, argument) => {
    expect(() => encodeXdrTokenPayload(cell, tokens as never)).toThrow(expect.objectContaining({ message: expect.stringContaining(`"${argument}"`) }));
  });
});

describe('server keys', () => {
  test('rxkad: "<service>:2" with the DES key; YFS-RxGK: "<service>:6:<kvno>:<enctype>" with the enctype\'s key', () => {
    expect(rxkadServerKey(52, SECRET)).toEqual({ description: '52:2', payload: SECRET });
    expect(yfsRxgkServerKey(2503, 3, 17, Buffer.alloc(16, 9))).toEqual({ description: '2503:6:3:17', payload: Buffer.alloc(16, 9) });
  });

  test('a weak key, a bad service, a key of the wrong length are refused', () => {
    expect(() => rxkadServerKey(52, hex('fe01fe01fe01fe01'))).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'secret'));
    expect(() => rxkadServerKey(0, SECRET)).toThrow(invalid('ERR_OUT_OF_RANGE', 'service'));
    expect(() => rxkadServerKey(65536, SECRET)).toThrow(invalid('ERR_OUT_OF_RANGE', 'service'));
    expect(() => yfsRxgkServerKey(52, 1, 18, Buffer.alloc(16))).toThrow(invalid('ERR_OUT_OF_RANGE', 'secret.length'));
  });

  test('a key without a service is installed for every bound service; a key for an unbound service is refused', () => {
    expect(checkServerSecurity({ keys: [{ secret: SECRET }], minimumLevel: 'auth' }, [52, 2503]))
      .toEqual({ keys: [rxkadServerKey(52, SECRET), rxkadServerKey(2503, SECRET)], level: 1 });
    expect(() => checkServerSecurity({ keys: [{ secret: SECRET, service: 53 }] }, [52]))
      .toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.keys[0].service'));
    expect(() => checkServerSecurity({ keys: [{ secret: SECRET }, { secret: SECRET, service: 52 }] }, [52]))
      .toThrow(invalid('ERR_INVALID_ARG_VALUE', '52:2'));
    expect(() => checkServerSecurity({ keys: [{ secret: SECRET }], keyring: 'ring' }, [52]))
      .toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security'));
    expect(() => checkServerSecurity({ keys: [] }, [52])).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.keys'));
    expect(() => checkServerSecurity({ minimumLevel: 'high' }, [52])).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.minimumLevel'));
  });
});

describe('client security option', () => {
  test('a token or a key, not both or neither; the level defaults to encrypt', () => {
    expect(checkClientSecurity({ key: 'afs@cell' })).toEqual({ level: 2, key: 'afs@cell', id: 'key:afs@cell:2' });
    expect(checkClientSecurity({ token: token(), level: 'clear' })).toMatchObject({ level: 0, payload: expect.any(Buffer) });
    expect(() => checkClientSecurity({ level: 'auth' })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security'));
    expect(() => checkClientSecurity({ key: 'k', token: token() })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security'));
    expect(() => checkClientSecurity({ key: 'k', level: 'plain' })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.level'));
    expect(() => checkClientSecurity({ key: '' })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.key'));
  });

  test('a YFS-RxGK token: an XDR key payload, the level the token names, and no other level', () => {
    const rxgk = mintRxgkToken({ serverKey: Buffer.alloc(32, 3), kvno: 1, enctype: 20, level: 'auth' });
    const checked = checkClientSecurity({ token: rxgk });
    expect(checked.level).toBe(1);
    // XDR: flags 0, the cell "rxrpc", one token whose first word is security index 6.
    expect(checked.payload!.readUInt32BE(0)).toBe(0);
    expect(checked.payload!.readUInt32BE(4)).toBe(5);
    expect(checked.payload!.subarray(8, 13).toString()).toBe('rxrpc');
    expect(checked.payload!.readUInt32BE(16)).toBe(1);
    expect(checked.payload!.readUInt32BE(24)).toBe(6);
    expect(checkClientSecurity({ token: rxgk, level: 'auth' }).level).toBe(1);
    expect(() => checkClientSecurity({ token: rxgk, level: 'encrypt' })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.level'));
    expect(() => checkClientSecurity({ token: { ...rxgk, key: Buffer.alloc(5) } })).toThrow(invalid('ERR_OUT_OF_RANGE', 'security.token.key.length'));
    expect(() => checkClientSecurity({ token: { ...rxgk, level: 'top' } })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'security.token.level'));
  });
});

describe('keys made through add_key and keyctl (fake)', () => {
  test('an owned key is revoked and unlinked from its keyring on close, once', () => {
    const keys = new FakeKeys();
    const key = createRxkadKey(token(), { description: 'afs@test', binding: { keys } as unknown as NativeBinding });
    expect(keys.log).toEqual(['add_key rxrpc afs@test -> -2']);
    key.close();
    key.close();
    expect(keys.log.slice(1)).toEqual(['revoke afs@test', 'unlink afs@test <- -2']);
  });

  test('a keyring\'s keys go into it and are revoked before it', () => {
    const keys = new FakeKeys();
    const ring = createServerKeyring([52, 2503], [{ secret: SECRET }], { description: 'ring', binding: { keys } as unknown as NativeBinding });
    expect(keys.log).toEqual(['add_key keyring ring -> -2', `add_key rxrpc_s 52:2 -> ${ring.serial}`, `add_key rxrpc_s 2503:2 -> ${ring.serial}`]);
    ring.close();
    expect(keys.log.slice(3)).toEqual([
      'revoke 52:2', `unlink 52:2 <- ${ring.serial}`, 'revoke 2503:2', `unlink 2503:2 <- ${ring.serial}`, 'revoke ring', 'unlink ring <- -2',
    ]);
  });

  test('an owned key dropped without close() is revoked and unlinked once collected', () => {
    // In a child with --expose-gc: a key is made through a fake table and dropped.
    const script = `
      const { addKey } = require(${JSON.stringify(join(__dirname, '..', '..', 'lib', 'security', 'keyring.js'))});
      const log = [];
      const keys = { addKey: () => 42, revokeKey: (s) => log.push('revoke ' + s), unlinkKey: (s, r) => log.push('unlink ' + s + ' ' + r) };
      (() => { addKey('rxrpc', 'dropped', null, { binding: { keys } }); })();
      (async () => {
        for (let i = 0; i < 50 && log.length < 2; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); }
        console.log(JSON.stringify(log));
      })();`;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['revoke 42', 'unlink 42 -2']);
  });

  test('nothing reaches add_key when a value is invalid', () => {
    const keys = new FakeKeys();
    const binding = { keys } as unknown as NativeBinding;
    expect(() => createServerKeyring([52], [{ secret: hex('0101010101010101') }], { binding })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'keys[0].secret'));
    expect(() => createKeyring('ring', { keyring: 'elsewhere' as never, binding })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'options.keyring'));
    expect(keys.log).toEqual([]);
  });
});

describe('Client and Server security on the fake kernel', () => {
  const A = { address: '10.9.8.7', port: 17003 };
  let kernel: FakeKernel;
  let keys: FakeKeys;
  let binding: NativeBinding;
  beforeEach(() => {
    kernel = new FakeKernel();
    keys = new FakeKeys();
    binding = bindingWithKeys(kernel, keys);
    kernel.peer(A.address, A.port, ({ data }) => ({ reply: data }));
  });

  test('a token becomes one key; key and level are set before bind, one local endpoint per level', async () => {
    const t = token();
    const client = new Client({ binding, security: { token: t, level: 'auth' } });
    await client.call({ ...A, service: 52 }, Buffer.from('a'));
    await client.call({ ...A, service: 52 }, Buffer.from('b'));
    await client.call({ ...A, service: 52 }, Buffer.from('c'), { security: { token: { ...t }, level: 'encrypt' } });
    await client.call({ ...A, service: 52 }, Buffer.from('d'), { security: null });
    const [added] = keys.log;
    const description = /^add_key rxrpc (\S+) -> -2$/.exec(added)![1];
    expect(keys.log).toEqual([
      added,
      `socket 1 setsockopt ${RXRPC_SECURITY_KEY} ${description}`, `socket 1 setsockopt ${RXRPC_MIN_SECURITY_LEVEL} 1`, 'socket 1 bind service 0',
      // The same token at another level: the same key, a socket of its own.
      `socket 2 setsockopt ${RXRPC_SECURITY_KEY} ${description}`, `socket 2 setsockopt ${RXRPC_MIN_SECURITY_LEVEL} 2`, 'socket 2 bind service 0',
      // Anonymous: no key, no level.
      'socket 3 bind service 0',
    ]);
    client.close();
    expect(keys.log.slice(-2)).toEqual([`revoke ${description}`, `unlink ${description} <- -2`]);
  });

  test('a key given by description is set as it is and never revoked', async () => {
    const client = new Client({ binding, security: { key: 'afs@example.org', level: 'clear' } });
    await client.call({ ...A, service: 52 }, Buffer.from('a'));
    client.close();
    expect(keys.log).toEqual([
      `socket 1 setsockopt ${RXRPC_SECURITY_KEY} afs@example.org`, `socket 1 setsockopt ${RXRPC_MIN_SECURITY_LEVEL} 0`, 'socket 1 bind service 0',
    ]);
  });

  test('a closed LinuxKey is refused before any socket is made', () => {
    const key = createRxkadKey(token(), { binding });
    key.close();
    expect(key).toBeInstanceOf(LinuxKey);
    expect(() => new Client({ binding, security: { key } })).toThrow(invalid('ERR_INVALID_ARG_VALUE', 'options.security.key'));
  });

  test('an invalid per-call token is refused before any system call', async () => {
    const client = new Client({ binding });
    await expect(client.call({ ...A, service: 52 }, Buffer.from('a'), { security: { token: token({ sessionKey: hex('1f1f1f1f0e0e0e0e') }) } }))
      .rejects.toThrow(invalid('ERR_INVALID_ARG_VALUE', 'options.security.token.sessionKey'));
    expect(() => client.openCall({ ...A, service: 52 }, { security: { key: 'k', level: 'top' as never } }))
      .toThrow(invalid('ERR_INVALID_ARG_VALUE', 'options.security.level'));
    client.close();
    expect(keys.log).toEqual([]);
    expect(kernel.sent).toEqual([]);
  });

  test('a server makes a keyring of its keys, sets it and the level before bind, and revokes it when closed', async () => {
    const server = new Server({
      address: '10.0.0.1', port: 7003, services: [52, 2503], backlog: 4,
      security: { keys: [{ secret: SECRET }], minimumLevel: 'encrypt' }, binding,
    }, () => Buffer.alloc(0));
    const ring = /^add_key keyring (\S+) -> -2$/.exec(keys.log[0])![1];
    expect(keys.log.slice(1)).toEqual([
      expect.stringMatching(/^add_key rxrpc_s 52:2 -> \d+$/), expect.stringMatching(/^add_key rxrpc_s 2503:2 -> \d+$/),
      `socket 1 setsockopt ${RXRPC_SECURITY_KEYRING} ${ring}`, `socket 1 setsockopt ${RXRPC_MIN_SECURITY_LEVEL} 2`,
      'socket 1 bind service 52', 'socket 1 bind service 2503',
    ]);
    await server.close();
    expect(keys.log.slice(-2)).toEqual([`revoke ${ring}`, `unlink ${ring} <- -2`]);
    expect([...keys.table.values()].every((k) => k.revoked)).toBe(true);
  });

  test('an invalid server key is refused before any system call', () => {
    expect(() => new Server({ address: '10.0.0.1', port: 7003, services: 52, security: { keys: [{ secret: Buffer.alloc(8) }] }, binding }, () => undefined))
      .toThrow(invalid('ERR_INVALID_ARG_VALUE', 'options.security.keys[0].secret'));
    expect(keys.log).toEqual([]);
  });
});

describe('kernel facts the library encodes', () => {
  test('the minimum-level warning covers the kernels measured not to enforce it', () => {
    expect(minimumLevelWarning(2, '6.1.0-57-amd64')).toMatch(/not enforced/);
    expect(minimumLevelWarning(1, '7.3.4+deb13-amd64')).toMatch(/not enforced/);
    expect(minimumLevelWarning(0, '6.1.0-57-amd64')).toBeUndefined();
    expect(minimumLevelWarning(2, '7.4.0')).toBeUndefined();
  });

  test('security abort codes: rxkad\'s and RxGK\'s, signed or not', () => {
    expect([19270400, 19270407, 19270412, 1233242880, 1233242890].every(isSecurityAbortCode)).toBe(true);
    expect([-5, -455, 19270413, 363524].some(isSecurityAbortCode)).toBe(false);
  });
});
