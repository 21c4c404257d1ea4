import { RawSocket } from '../../lib/socket';

describe('AF_RXRPC socket in the kernel VM', () => {
  test('the test is running under the VM kernel', () => {
    expect(process.env.RXRPC_VM_KERNEL).toBeTruthy();
  });

  test.each(['IPv4', 'IPv6'] as const)('%s socket opens, reports SUPPORTED_CMSG, binds and closes', (family) => {
    const s = new RawSocket({ family });
    expect(s.supportedCmsg()).toBeGreaterThanOrEqual(14); // RXRPC_CHARGE_ACCEPT is 14
    s.bind({ service: 4711, address: family === 'IPv4' ? '127.0.0.1' : '::1', port: 17100 + (family === 'IPv4' ? 0 : 1) });
    s.close();
    s.close(); // idempotent
    expect(() => s.supportedCmsg()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });
});
