/**
 * Socket options, bind and listen through the kernel: every option's success
 * case and the exact error the kernel gives for each documented misuse.
 *
 * Measured on Debian's 6.1.192, 6.12.95 and 7.3.4 kernels. The codes are the
 * same on all three except where a test says otherwise; there the expectation
 * is chosen by RXRPC_VM_KERNEL (the guest's uname -r).
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import {
  RXRPC_EXCLUSIVE_CONNECTION, RXRPC_MIN_SECURITY_LEVEL, RXRPC_SECURITY_KEY, RXRPC_SECURITY_KEYRING,
  RXRPC_SUPPORTED_CMSG, RXRPC_UPGRADEABLE_SERVICE, SO_SNDBUF, SOL_RXRPC, SOL_SOCKET,
} from '../../lib/constants';
import { encodeSockaddr } from '../../lib/codec';
import { Endpoint } from '../../lib/endpoint';
import { NativeSocket } from '../../lib/native';
import { RawSocket, RawSocketOptions } from '../../lib/socket';
import { freshPort, request, serve, until } from './helpers';

const ADDRESS = '127.0.0.1';
const MAX_BACKLOG = '/proc/sys/net/rxrpc/max_backlog';

// Jest gives every test file its own copy of helpers.ts, so freshPort()
// starts from the same number in each file; this file offsets into a range
// of its own so that it never meets a port another file has just closed.
const port = () => freshPort() + 1000;

// "6.1.0-56-amd64", "6.12.95+deb12-amd64", "7.3.4+deb13-amd64"
const [major, minor] = (process.env.RXRPC_VM_KERNEL ?? '').split(/[.+-]/).map(Number);
const kernelAtLeast = (ma: number, mi: number) => major > ma || (major === ma && minor >= mi);

// Linux errno values; node's table lacks ENOKEY.
const ERRNO: Record<string, number> = { ...constants.errno, ENOKEY: 126 };
/** The error the native layer throws for a failed system call: code, negative errno, syscall. */
const sysError = (code: string, syscall: string) => {
  if (ERRNO[code] === undefined) throw new Error(`no errno number for ${code}`);
  return expect.objectContaining({ code, errno: -ERRNO[code], syscall });
};
const outOfRange = (argument: string) =>
  expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', argument });

/** The private native socket, for option values the TypeScript layer never sends. */
const nativeOf = (s: RawSocket) => (s as unknown as { native: NativeSocket }).native;

/** Runs fn with a socket factory; every socket it made is closed afterwards. */
async function withSockets<T>(fn: (open: (options?: RawSocketOptions) => RawSocket) => T | Promise<T>): Promise<T> {
  const made: RawSocket[] = [];
  try {
    return await fn((options) => {
      const s = new RawSocket(options);
      made.push(s);
      return s;
    });
  } finally {
    for (const s of made) s.close();
  }
}

/**
 * add_key(2) into the user keyring (@u), which this process searches through
 * its user session keyring. Node cannot make the system call and the guest
 * has no keyctl, so perl (Essential in Debian) does; 248 is add_key on x86_64.
 * No payload makes an rxrpc key a "no security" key, and an empty keyring.
 */
function addKey(type: 'rxrpc' | 'keyring', description: string): number {
  const out = execFileSync('perl', [
    '-e', 'my ($t, $d) = @ARGV; my $r = syscall(248, $t, $d, 0, 0, -4); print $r < 0 ? "ERR $!" : $r',
    type, description,
  ]).toString();
  const serial = Number(out);
  if (!Number.isInteger(serial) || serial <= 0) throw new Error(`add_key(${type}, ${description}): ${out}`);
  return serial;
}

/** Client connections (End = Clt) to ADDRESS:port in /proc/net/rxrpc/conns. */
function clientConnections(serverPort: number): number {
  return readFileSync('/proc/net/rxrpc/conns', 'utf8').split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[2] === `${ADDRESS}:${serverPort}` && cols[5] === 'Clt').length;
}

const KEY = `rxrpc-options-test-${process.pid}`;
const KEYRING = `rxrpc-options-ring-${process.pid}`;
let originalMaxBacklog: string;

beforeAll(() => {
  addKey('rxrpc', KEY);
  addKey('keyring', KEYRING);
  originalMaxBacklog = readFileSync(MAX_BACKLOG, 'utf8').trim();
});

afterAll(() => {
  writeFileSync(MAX_BACKLOG, originalMaxBacklog);
});

describe('RXRPC_SECURITY_KEY', () => {
  test('an rxrpc key that exists is taken on an unbound socket, which then still makes plain calls', async () => {
    const serverPort = port();
    const server = serve(ADDRESS, serverPort, [2001], (req) => req);
    try {
      await withSockets(async (open) => {
        const s = open();
        expect(() => s.setSecurityKey(KEY)).not.toThrow();
        // A key without a token means "no security": calls still go out in plain.
        const client = new Endpoint({ socket: s });
        const { reply } = request(client, { service: 2001, address: ADDRESS, port: serverPort }, Buffer.from('k'));
        await expect(reply).resolves.toEqual({ data: Buffer.from('k'), service: 2001 });
      });
    } finally {
      server.close();
    }
  });

  test('a description no rxrpc key has is refused with ENOKEY, a keyring of that name included', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => s.setSecurityKey('no-such-rxrpc-key')).toThrow(sysError('ENOKEY', 'setsockopt'));
      expect(() => s.setSecurityKey(KEYRING)).toThrow(sysError('ENOKEY', 'setsockopt'));
      // The failures left the socket free to take a key.
      expect(() => s.setSecurityKey(KEY)).not.toThrow();
    });
  });

  test('a second key on the same socket is refused with EINVAL', async () => {
    await withSockets((open) => {
      const s = open();
      s.setSecurityKey(KEY);
      expect(() => s.setSecurityKey(KEY)).toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });

  test('after bind, client or server, it is refused with EISCONN, even for a key that exists', async () => {
    await withSockets((open) => {
      const client = open();
      client.bind({ service: 0, address: ADDRESS, port: port() });
      expect(() => client.setSecurityKey(KEY)).toThrow(sysError('EISCONN', 'setsockopt'));
      expect(() => client.setSecurityKey('no-such-rxrpc-key')).toThrow(sysError('EISCONN', 'setsockopt'));
      const server = open();
      server.bind({ service: 2002, address: ADDRESS, port: port() });
      expect(() => server.setSecurityKey('no-such-rxrpc-key')).toThrow(sysError('EISCONN', 'setsockopt'));
    });
  });

  test('an empty description is refused by the TypeScript layer; sent raw, the kernel says EINVAL', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => s.setSecurityKey('')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
      expect(() => nativeOf(s).setsockopt(SOL_RXRPC, RXRPC_SECURITY_KEY, Buffer.alloc(0)))
        .toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => nativeOf(s).setsockopt(SOL_RXRPC, RXRPC_SECURITY_KEY, null)).toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });
});

describe('RXRPC_SECURITY_KEYRING', () => {
  test('a keyring that exists is taken on an unbound server socket, which then still answers plain calls', async () => {
    const serverPort = port();
    const raw = new RawSocket();
    const server = new Endpoint({ socket: raw });
    const client = new Endpoint();
    try {
      expect(() => raw.setSecurityKeyring(KEYRING)).not.toThrow();
      raw.bind({ service: 2003, address: ADDRESS, port: serverPort });
      server.listen(2);
      server.on('call', (call) => {
        call.ondata = (_d, end) => end && call.write(Buffer.from('ring'), false);
      });
      const { reply } = request(client, { service: 2003, address: ADDRESS, port: serverPort }, Buffer.from('?'));
      await expect(reply).resolves.toEqual({ data: Buffer.from('ring'), service: 2003 });
    } finally {
      client.close();
      server.close();
    }
  });

  test('a description no keyring has is refused with ENOKEY, an rxrpc key of that name included', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => s.setSecurityKeyring('no-such-keyring')).toThrow(sysError('ENOKEY', 'setsockopt'));
      expect(() => s.setSecurityKeyring(KEY)).toThrow(sysError('ENOKEY', 'setsockopt'));
      expect(() => s.setSecurityKeyring(KEYRING)).not.toThrow();
    });
  });

  test('a second keyring is refused with EINVAL; a key and a keyring go together in either order', async () => {
    await withSockets((open) => {
      const a = open();
      a.setSecurityKeyring(KEYRING);
      expect(() => a.setSecurityKeyring(KEYRING)).toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => a.setSecurityKey(KEY)).not.toThrow();
      const b = open();
      b.setSecurityKey(KEY);
      expect(() => b.setSecurityKeyring(KEYRING)).not.toThrow();
    });
  });

  test('after bind it is refused with EISCONN, even for a keyring that exists', async () => {
    await withSockets((open) => {
      const server = open();
      server.bind({ service: 2004, address: ADDRESS, port: port() });
      expect(() => server.setSecurityKeyring(KEYRING)).toThrow(sysError('EISCONN', 'setsockopt'));
      const client = open();
      client.bind({ service: 0, address: ADDRESS, port: port() });
      expect(() => client.setSecurityKeyring('no-such-keyring')).toThrow(sysError('EISCONN', 'setsockopt'));
    });
  });

  test('an empty description is refused by the TypeScript layer; sent raw, the kernel says EINVAL', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => s.setSecurityKeyring('')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
      expect(() => nativeOf(s).setsockopt(SOL_RXRPC, RXRPC_SECURITY_KEYRING, Buffer.alloc(0)))
        .toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });
});

describe('RXRPC_EXCLUSIVE_CONNECTION', () => {
  test('is taken on an unbound socket, also a second time', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => s.setExclusiveConnection()).not.toThrow();
      expect(() => s.setExclusiveConnection()).not.toThrow();
    });
  });

  test('after bind, client or server, it is refused with EISCONN', async () => {
    await withSockets((open) => {
      const client = open();
      client.bind({ service: 0, address: ADDRESS, port: port() });
      expect(() => client.setExclusiveConnection()).toThrow(sysError('EISCONN', 'setsockopt'));
      const server = open();
      server.bind({ service: 2005, address: ADDRESS, port: port() });
      expect(() => server.setExclusiveConnection()).toThrow(sysError('EISCONN', 'setsockopt'));
    });
  });

  test('with a value (it takes none) it is refused with EINVAL', async () => {
    await withSockets((open) => {
      expect(() => nativeOf(open()).setsockopt(SOL_RXRPC, RXRPC_EXCLUSIVE_CONNECTION, Buffer.alloc(4)))
        .toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });

  test('two calls in flight to one server share a connection, but get one each on an exclusive socket', async () => {
    const counts: Record<string, number> = {};
    for (const exclusive of [false, true]) {
      const serverPort = port();
      const server = new Endpoint();
      const raw = new RawSocket();
      if (exclusive) raw.setExclusiveConnection();
      const client = new Endpoint({ socket: raw });
      try {
        server.raw.bind({ service: 2006, address: ADDRESS, port: serverPort });
        server.listen(4);
        let arrived = 0;
        server.on('call', () => arrived++); // held open: never answered
        for (let i = 0; i < 2; i++) {
          client.startCall({ service: 2006, address: ADDRESS, port: serverPort }, Buffer.from('x'), false).ondone = () => {};
        }
        await until(() => arrived === 2);
        counts[String(exclusive)] = clientConnections(serverPort);
      } finally {
        client.close();
        server.close();
      }
    }
    expect(counts).toEqual({ false: 1, true: 2 });
  });
});

describe('RXRPC_MIN_SECURITY_LEVEL', () => {
  test('levels 0, 1 and 2 are taken on an unbound socket', async () => {
    await withSockets((open) => {
      const s = open();
      for (const level of [0, 1, 2]) expect(() => s.setMinSecurityLevel(level)).not.toThrow();
    });
  });

  test('out-of-range levels are refused by the TypeScript layer with ERR_OUT_OF_RANGE before any system call', async () => {
    await withSockets((open) => {
      const s = open();
      for (const level of [3, -1, 1.5, 2 ** 32]) expect(() => s.setMinSecurityLevel(level)).toThrow(outOfRange('level'));
      expect(() => s.setMinSecurityLevel('1' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      // No system call was made: on a bound socket the kernel would say
      // EISCONN, and on a closed one the native layer ERR_SOCKET_CLOSED.
      s.bind({ service: 0, address: ADDRESS, port: port() });
      expect(() => s.setMinSecurityLevel(3)).toThrow(outOfRange('level'));
      expect(() => s.setMinSecurityLevel(1)).toThrow(sysError('EISCONN', 'setsockopt'));
      s.close();
      expect(() => s.setMinSecurityLevel(3)).toThrow(outOfRange('level'));
    });
  });

  test('through the raw setsockopt the kernel refuses a level above 2 or a value not 4 bytes long with EINVAL', async () => {
    await withSockets((open) => {
      const n = nativeOf(open());
      const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
      for (const value of [u32(3), u32(0xffffffff), Buffer.from([1, 0]), Buffer.alloc(8), null]) {
        expect(() => n.setsockopt(SOL_RXRPC, RXRPC_MIN_SECURITY_LEVEL, value)).toThrow(sysError('EINVAL', 'setsockopt'));
      }
      expect(() => n.setsockopt(SOL_RXRPC, RXRPC_MIN_SECURITY_LEVEL, u32(2))).not.toThrow();
    });
  });

  test('after bind it is refused with EISCONN, checked before the value (a raw 3 gets EISCONN too)', async () => {
    await withSockets((open) => {
      const s = open();
      s.bind({ service: 2007, address: ADDRESS, port: port() });
      expect(() => s.setMinSecurityLevel(0)).toThrow(sysError('EISCONN', 'setsockopt'));
      expect(() => nativeOf(s).setsockopt(SOL_RXRPC, RXRPC_MIN_SECURITY_LEVEL, Buffer.from([3, 0, 0, 0])))
        .toThrow(sysError('EISCONN', 'setsockopt'));
    });
  });

  test('without keys the level is not enforced: a level-2 server answers a plain call from a level-2 client', async () => {
    // Measured on 6.1, 6.12 and 7.3: neither side refuses or aborts.
    const serverPort = port();
    const serverRaw = new RawSocket();
    const clientRaw = new RawSocket();
    const server = new Endpoint({ socket: serverRaw });
    const client = new Endpoint({ socket: clientRaw });
    try {
      serverRaw.setMinSecurityLevel(2);
      clientRaw.setMinSecurityLevel(2);
      serverRaw.bind({ service: 2008, address: ADDRESS, port: serverPort });
      server.listen(2);
      server.on('call', (call) => {
        call.ondata = (_d, end) => end && call.write(Buffer.from('plain'), false);
      });
      const { reply } = request(client, { service: 2008, address: ADDRESS, port: serverPort }, Buffer.from('?'));
      await expect(reply).resolves.toEqual({ data: Buffer.from('plain'), service: 2008 });
    } finally {
      client.close();
      server.close();
    }
  });
});

describe('RXRPC_UPGRADEABLE_SERVICE', () => {
  /** A socket bound to services a and b on one fresh port. */
  const twoServices = (open: () => RawSocket, a = 2100, b = 2101) => {
    const s = open();
    const p = port();
    s.bind({ service: a, address: ADDRESS, port: p });
    s.bind({ service: b, address: ADDRESS, port: p });
    return s;
  };

  test('is taken after exactly two binds, for the bound pair in either direction, and listen follows', async () => {
    await withSockets((open) => {
      const s = twoServices(open);
      expect(() => s.setUpgradeableService(2100, 2101)).not.toThrow();
      expect(() => s.listen(2)).not.toThrow();
      const r = twoServices(open);
      expect(() => r.setUpgradeableService(2101, 2100)).not.toThrow();
    });
  });

  test('before any bind and after one bind it is refused with EISCONN', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => s.setUpgradeableService(2100, 2101)).toThrow(sysError('EISCONN', 'setsockopt'));
      s.bind({ service: 2100, address: ADDRESS, port: port() });
      expect(() => s.setUpgradeableService(2100, 2101)).toThrow(sysError('EISCONN', 'setsockopt'));
    });
  });

  test('after listen it is refused with EISCONN, or EINVAL when it was already set (that check comes first)', async () => {
    await withSockets((open) => {
      const fresh = twoServices(open);
      fresh.listen(2);
      expect(() => fresh.setUpgradeableService(2100, 2101)).toThrow(sysError('EISCONN', 'setsockopt'));
      const set = twoServices(open);
      set.setUpgradeableService(2100, 2101);
      set.listen(2);
      expect(() => set.setUpgradeableService(2100, 2101)).toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });

  test('a second time it is refused with EINVAL, the same pair or reversed', async () => {
    await withSockets((open) => {
      const s = twoServices(open);
      s.setUpgradeableService(2100, 2101);
      expect(() => s.setUpgradeableService(2100, 2101)).toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => s.setUpgradeableService(2101, 2100)).toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });

  test('IDs that are not the bound pair are refused with EINVAL, and leave the option unset', async () => {
    await withSockets((open) => {
      const s = twoServices(open);
      for (const [from, to] of [[2100, 2102], [2102, 2101], [2100, 2100], [2101, 2101]]) {
        expect(() => s.setUpgradeableService(from, to)).toThrow(sysError('EINVAL', 'setsockopt'));
      }
      const zero = Buffer.alloc(4); // {0, 0}: only reachable raw, the TypeScript layer wants 1..65535
      expect(() => s.setUpgradeableService(0, 2101)).toThrow(outOfRange('from'));
      expect(() => nativeOf(s).setsockopt(SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, zero)).toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => s.setUpgradeableService(2100, 2101)).not.toThrow();
    });
  });

  test('a value other than 4 bytes is refused with EINVAL, checked before the socket state', async () => {
    await withSockets((open) => {
      const unbound = nativeOf(open());
      expect(() => unbound.setsockopt(SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, Buffer.alloc(2)))
        .toThrow(sysError('EINVAL', 'setsockopt'));
      const s = nativeOf(twoServices(open));
      const pair = Buffer.from([0x34, 0x08, 0x35, 0x08]); // {2100, 2101} little-endian
      expect(() => s.setsockopt(SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, pair.subarray(0, 2)))
        .toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => s.setsockopt(SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, Buffer.concat([pair, Buffer.alloc(4)])))
        .toThrow(sysError('EINVAL', 'setsockopt'));
      expect(() => s.setsockopt(SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, pair)).not.toThrow();
    });
  });
});

describe('RXRPC_SUPPORTED_CMSG and options the kernel does not know', () => {
  test('SUPPORTED_CMSG is at least 14 (CHARGE_ACCEPT): 14 on 6.1 and 6.12, 19 on 7.x', async () => {
    await withSockets((open) => {
      const value = open().supportedCmsg();
      expect(value).toBeGreaterThanOrEqual(14);
      if (!kernelAtLeast(6, 13)) expect(value).toBe(14);
      if (kernelAtLeast(7, 0)) expect(value).toBe(19);
    });
  });

  test('SUPPORTED_CMSG into a 2-byte buffer fails with errno 525, the kernel-internal ETOOSMALL', async () => {
    await withSockets((open) => {
      expect(() => nativeOf(open()).getsockopt(SOL_RXRPC, RXRPC_SUPPORTED_CMSG, 2))
        .toThrow(expect.objectContaining({ code: 'E525', errno: -525, syscall: 'getsockopt' }));
    });
  });

  test('getsockopt of any other SOL_RXRPC option fails with ENOTSUP (errno 95: EOPNOTSUPP in the kernel headers, ENOTSUP to Node)', async () => {
    await withSockets((open) => {
      const n = nativeOf(open());
      for (const name of [RXRPC_SECURITY_KEY, RXRPC_MIN_SECURITY_LEVEL, RXRPC_UPGRADEABLE_SERVICE]) {
        expect(() => n.getsockopt(SOL_RXRPC, name, 4)).toThrow(sysError('ENOTSUP', 'getsockopt'));
      }
    });
  });

  test('setsockopt of an unknown name, of SUPPORTED_CMSG, or at level SOL_IP is accepted silently', async () => {
    await withSockets((open) => {
      const n = nativeOf(open());
      expect(() => n.setsockopt(SOL_RXRPC, 99, Buffer.alloc(4))).not.toThrow();
      expect(() => n.setsockopt(SOL_RXRPC, RXRPC_SUPPORTED_CMSG, Buffer.alloc(4))).not.toThrow();
      expect(() => n.setsockopt(0, 1, Buffer.alloc(4))).not.toThrow();
    });
  });
});

describe('SO_SNDBUF and SO_RCVBUF', () => {
  const sysctl = (name: string) => Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8'));

  test('start at the net.core defaults and report twice what is set, bound or not', async () => {
    await withSockets((open) => {
      const s = open();
      expect(s.sendBufferSize).toBe(sysctl('wmem_default'));
      expect(s.receiveBufferSize).toBe(sysctl('rmem_default'));
      s.sendBufferSize = 65536;
      s.receiveBufferSize = 65536;
      expect([s.sendBufferSize, s.receiveBufferSize]).toEqual([131072, 131072]);
      s.bind({ service: 0, address: ADDRESS, port: port() });
      s.sendBufferSize = 32768;
      s.receiveBufferSize = 40000;
      expect([s.sendBufferSize, s.receiveBufferSize]).toEqual([65536, 80000]);
    });
  });

  test('are clamped to the kernel minimum (4608 and 2304) and to twice net.core.wmem_max / rmem_max', async () => {
    await withSockets((open) => {
      const s = open();
      s.sendBufferSize = 1;
      s.receiveBufferSize = 1;
      expect([s.sendBufferSize, s.receiveBufferSize]).toEqual([4608, 2304]);
      s.sendBufferSize = 1e9;
      s.receiveBufferSize = 1e9;
      // 2 x 212992 on 6.1 and 6.12; 2 x 4194304 on 7.3 (Debian raised the maxima).
      expect([s.sendBufferSize, s.receiveBufferSize]).toEqual([2 * sysctl('wmem_max'), 2 * sysctl('rmem_max')]);
    });
  });

  test('0 is refused by the TypeScript layer; a 2-byte value sent raw gets EINVAL', async () => {
    await withSockets((open) => {
      const s = open();
      expect(() => { s.sendBufferSize = 0; }).toThrow(outOfRange('size'));
      expect(() => { s.receiveBufferSize = 2 ** 31; }).toThrow(outOfRange('size'));
      expect(() => nativeOf(s).setsockopt(SOL_SOCKET, SO_SNDBUF, Buffer.alloc(2))).toThrow(sysError('EINVAL', 'setsockopt'));
    });
  });
});

describe('bind', () => {
  test('the same service twice: EADDRINUSE', async () => {
    await withSockets((open) => {
      const s = open();
      const p = port();
      s.bind({ service: 2200, address: ADDRESS, port: p });
      expect(() => s.bind({ service: 2200, address: ADDRESS, port: p })).toThrow(sysError('EADDRINUSE', 'bind'));
    });
  });

  test('a second service on another transport, or service 0 second, is refused with EINVAL', async () => {
    await withSockets((open) => {
      const s = open();
      const p = port();
      s.bind({ service: 2201, address: ADDRESS, port: p });
      expect(() => s.bind({ service: 2202, address: ADDRESS, port: port() })).toThrow(sysError('EINVAL', 'bind'));
      expect(() => s.bind({ service: 2202, address: '127.0.0.2', port: p })).toThrow(sysError('EINVAL', 'bind'));
      expect(() => s.bind({ service: 0, address: ADDRESS, port: p })).toThrow(sysError('EINVAL', 'bind'));
      // None of them counted: the second service still binds.
      expect(() => s.bind({ service: 2202, address: ADDRESS, port: p })).not.toThrow();
    });
  });

  test('a third bind is refused with EINVAL, whatever the service', async () => {
    await withSockets((open) => {
      const s = open();
      const p = port();
      s.bind({ service: 2203, address: ADDRESS, port: p });
      s.bind({ service: 2204, address: ADDRESS, port: p });
      expect(() => s.bind({ service: 2205, address: ADDRESS, port: p })).toThrow(sysError('EINVAL', 'bind'));
      expect(() => s.bind({ service: 2203, address: ADDRESS, port: p })).toThrow(sysError('EINVAL', 'bind'));
    });
  });

  test('bind after listen is refused with EINVAL', async () => {
    await withSockets((open) => {
      const s = open();
      const p = port();
      s.bind({ service: 2206, address: ADDRESS, port: p });
      s.listen(1);
      expect(() => s.bind({ service: 2207, address: ADDRESS, port: p })).toThrow(sysError('EINVAL', 'bind'));
    });
  });

  test('another socket binding a server on the same UDP address gets EADDRINUSE; a client there is allowed', async () => {
    await withSockets((open) => {
      const p = port();
      open().bind({ service: 2208, address: ADDRESS, port: p });
      expect(() => open().bind({ service: 2209, address: ADDRESS, port: p })).toThrow(sysError('EADDRINUSE', 'bind'));
      expect(() => open().bind({ service: 2208, address: ADDRESS, port: p })).toThrow(sysError('EADDRINUSE', 'bind'));
      expect(() => open().bind({ service: 0, address: ADDRESS, port: p })).not.toThrow();
    });
  });

  test('a UDP port held by a plain UDP socket gets EADDRINUSE, for a server and a client bind', async () => {
    const udp = createSocket('udp4');
    const p = port();
    try {
      await new Promise<void>((resolve) => udp.bind(p, ADDRESS, resolve));
      await withSockets((open) => {
        expect(() => open().bind({ service: 2210, address: ADDRESS, port: p })).toThrow(sysError('EADDRINUSE', 'bind'));
        expect(() => open().bind({ service: 0, address: ADDRESS, port: p })).toThrow(sysError('EADDRINUSE', 'bind'));
      });
    } finally {
      udp.close();
    }
  });

  test('an IPv6 address on an IPv4 socket: accepted by 6.1, EAFNOSUPPORT from 6.12 on', async () => {
    await withSockets((open) => {
      const bind = () => open({ family: 'IPv4' }).bind({ service: 2211, address: '::1', port: port() });
      if (kernelAtLeast(6, 12)) expect(bind).toThrow(sysError('EAFNOSUPPORT', 'bind'));
      else expect(bind).not.toThrow();
      // The other way round is fine everywhere.
      expect(() => open({ family: 'IPv6' }).bind({ service: 2212, address: ADDRESS, port: port() })).not.toThrow();
    });
  });

  test('a raw address shorter than sockaddr_rxrpc gets EINVAL; one of family 0 gets EAFNOSUPPORT', async () => {
    await withSockets((open) => {
      const n = nativeOf(open());
      const good = encodeSockaddr({ service: 2213, address: ADDRESS, port: port() });
      expect(() => n.bind(good.subarray(0, 20))).toThrow(sysError('EINVAL', 'bind'));
      const familyZero = Buffer.from(good);
      familyZero.writeUInt16LE(0, 0);
      expect(() => n.bind(familyZero)).toThrow(sysError('EAFNOSUPPORT', 'bind'));
      expect(() => n.bind(good)).not.toThrow();
    });
  });
});

describe('listen', () => {
  test('unbound: EADDRNOTAVAIL; bound as a client: EBUSY', async () => {
    await withSockets((open) => {
      expect(() => open().listen(1)).toThrow(sysError('EADDRNOTAVAIL', 'listen'));
      const client = open();
      client.bind({ service: 0, address: ADDRESS, port: port() });
      expect(() => client.listen(1)).toThrow(sysError('EBUSY', 'listen'));
    });
  });

  test('a backlog beyond net.rxrpc.max_backlog is refused with EINVAL; the maximum itself is taken', async () => {
    await withSockets((open) => {
      for (const max of [4, 10]) {
        writeFileSync(MAX_BACKLOG, String(max));
        const s = open();
        s.bind({ service: 2300, address: ADDRESS, port: port() });
        expect(() => s.listen(max + 1)).toThrow(sysError('EINVAL', 'listen'));
        // INT_MAX is not read as "the maximum" here, whatever listen(2) says elsewhere.
        expect(() => s.listen(0x7fffffff)).toThrow(sysError('EINVAL', 'listen'));
        expect(() => nativeOf(s).listen(-1)).toThrow(sysError('EINVAL', 'listen'));
        expect(() => s.listen(-1)).toThrow(outOfRange('backlog'));
        expect(() => s.listen(max)).not.toThrow();
      }
    });
  });

  test('net.rxrpc.max_backlog itself only takes 4 to 31', () => {
    for (const bad of ['3', '32']) {
      expect(() => writeFileSync(MAX_BACKLOG, bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    writeFileSync(MAX_BACKLOG, '31');
    expect(readFileSync(MAX_BACKLOG, 'utf8').trim()).toBe('31');
    writeFileSync(MAX_BACKLOG, '4');
    expect(readFileSync(MAX_BACKLOG, 'utf8').trim()).toBe('4');
  });

  test('a second listen is refused with EBUSY; listen(0) stops a listening socket, and after it every listen is EBUSY', async () => {
    writeFileSync(MAX_BACKLOG, '10');
    await withSockets((open) => {
      const s = open();
      s.bind({ service: 2301, address: ADDRESS, port: port() });
      s.listen(2);
      expect(() => s.listen(3)).toThrow(sysError('EBUSY', 'listen'));
      expect(() => s.listen(0)).not.toThrow();
      expect(() => s.listen(0)).toThrow(sysError('EBUSY', 'listen'));
      expect(() => s.listen(2)).toThrow(sysError('EBUSY', 'listen'));
      // listen(0) on a socket that was never listening is a listen with no backlog.
      const t = open();
      t.bind({ service: 2302, address: ADDRESS, port: port() });
      expect(() => t.listen(0)).not.toThrow();
      expect(() => t.listen(2)).toThrow(sysError('EBUSY', 'listen'));
    });
  });
});
