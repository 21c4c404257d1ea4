import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawSocket } from '../../lib/socket';

// Whether this kernel offers AF_RXRPC right now (the module may be built in or loaded).
const hostHasRxrpc = /^RXRPC\s/m.test(readFileSync('/proc/net/protocols', 'utf8'));

describe('native addon on this host', () => {
  test('opening a socket matches what the kernel offers', () => {
    if (hostHasRxrpc) {
      const s = new RawSocket();
      expect(s.supportedCmsg()).toBeGreaterThanOrEqual(14);
      s.close();
    } else {
      expect(() => new RawSocket()).toThrow(
        expect.objectContaining({ code: 'EAFNOSUPPORT', errno: -97, syscall: 'socket' }),
      );
    }
  });

  test('bad constructor options are typed errors before any system call', () => {
    expect(() => new RawSocket({ family: 'IPX' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new RawSocket({ batch: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', value: 0 }));
  });

  test('the addon checks its own arguments with TypeError and RangeError', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Socket } = require('bindings')('rxrpc');
    const meta = new Uint8Array(192);
    // The addon's errors come from the main realm, not jest's sandbox: compare names.
    expect(() => new Socket(3, meta, () => {}, () => {})).toThrow(
      expect.objectContaining({ name: 'RangeError', message: expect.stringContaining('Received 3') }),
    );
    expect(() => new Socket('2', meta, () => {}, () => {})).toThrow(expect.objectContaining({ name: 'TypeError' }));
    expect(() => new Socket(2, new Uint8Array(8), () => {}, () => {})).toThrow(/meta/);
    expect(() => new Socket(2, meta, null, () => {})).toThrow(/onRecv/);
  });

  test('require explains that AF_RXRPC needs Linux elsewhere', () => {
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    Object.defineProperty(process, 'platform', { value: 'darwin' });
    try {
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { loadNative } = require('../../lib/native');
        expect(() => loadNative()).toThrow(
          expect.objectContaining({ code: 'ERR_RXRPC_UNSUPPORTED_PLATFORM', message: expect.stringMatching(/needs Linux.*darwin/) }),
        );
      });
    } finally {
      Object.defineProperty(process, 'platform', platform);
    }
  });
});

describe('RXRPC_ADDON: another build of the addon (the sanitizer run uses it)', () => {
  const native = require.resolve('../../lib/native');
  const load = (file: string) => spawnSync(process.execPath, ['-e', `
    try {
      require(${JSON.stringify(native)}).loadNative();
      console.log(require('node:fs').readFileSync('/proc/self/maps', 'utf8').includes(process.env.RXRPC_ADDON) ? 'loaded' : 'another');
    }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message.split('\\n')[0] })); }`], {
    encoding: 'utf8', env: { ...process.env, RXRPC_ADDON: file },
  }).stdout.trim();

  test('a file that exists is loaded instead of build/Release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxrpc-addon-'));
    try {
      const copy = join(dir, 'rxrpc.node');
      copyFileSync(join(__dirname, '..', '..', 'Release', 'rxrpc.node'), copy);
      expect(load(copy)).toBe('loaded');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a file that does not exist fails with MODULE_NOT_FOUND naming it', () => {
    expect(JSON.parse(load('/nonexistent/rxrpc.node'))).toEqual({
      code: 'MODULE_NOT_FOUND', message: expect.stringContaining('/nonexistent/rxrpc.node'),
    });
  });
});
