/**
 * What the library needs to know of the running kernel's rxrpc module.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { InvalidArgTypeError } from './errors';

/**
 * The version of the running rxrpc module when it is the fixed one this
 * project builds (kernel/: /sys/module/rxrpc/version reads "upgrade-fix.N";
 * Debian's own module has no version file), or undefined.
 */
export function fixedModuleVersion(file = '/sys/module/rxrpc/version'): string | undefined {
  if (typeof file !== 'string' || file === '') throw new InvalidArgTypeError('file', 'a non-empty string', file);
  try {
    const version = readFileSync(file, 'utf8').trim();
    return /^upgrade-fix\.\d+$/.test(version) ? version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A kernel release ("6.12.95+deb12-amd64") as major * 1000 + minor (6012), for
 * comparing series; undefined when it does not start with two numbers.
 */
export function kernelSeries(kernelRelease: string): number | undefined {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  return m ? Number(m[1]) * 1000 + Number(m[2]) : undefined;
}

/**
 * True where closing the last socket of a local endpoint just after a client
 * call ended can crash the kernel: a connection's timer sends the call's final
 * ACK two jiffies after it ends, and if the endpoint's I/O thread has exited
 * meanwhile, Linux 6.2 to 7.2 hand its NULL task to wake_up_process()
 * (rxrpc_connection_timer -> rxrpc_wake_up_io_thread; seen on Debian's 6.12.95,
 * in 7.3 the function checks for it, as does the fixed module). Where this is
 * true, RawSocket.close() of a client socket (bound to no service) closes its descriptor only once
 * that window has passed.
 */
export function closeRacesConnectionTimer(kernelRelease = release(), fixed = fixedModuleVersion()): boolean {
  const series = kernelSeries(kernelRelease);
  if (series === undefined || fixed !== undefined) return false;
  return series >= 6002 && series < 7003;
}
