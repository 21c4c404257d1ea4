import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { fixedModuleVersion } from '../../lib/server';
import { cProgram } from './helpers';

/**
 * Which rxrpc.ko this kernel runs: the fixed one (kernel/) or Debian's stock
 * module, by the library's own test (fixedModuleVersion). The VM runner says
 * which it loaded (RXRPC_VM_MODULE); the module must agree, or the boot did
 * not do what it claimed.
 */
export function loadedModule(): { fixed: boolean; version?: string } {
  const version = fixedModuleVersion();
  const fixed = version !== undefined;
  const claimed = process.env.RXRPC_VM_MODULE;
  if (claimed !== undefined && claimed !== (fixed ? 'fixed' : 'stock')) {
    throw new Error(`the VM runner loaded the ${claimed} rxrpc module, but /sys/module/rxrpc/version says ${version ?? 'stock (no upgrade-fix version)'}`);
  }
  return { fixed, version };
}

/** The reproducer (kernel/selftest/rxrpc_upgrade.c), as `make -C kernel/selftest` built it or compiled here. */
export const reproducer = () => cProgram('kernel/selftest/rxrpc_upgrade.c', 'build/kernel/rxrpc_upgrade', ['-Wall']);

/** The oops (bit 7, 128) and kernel-warning (bit 9, 512) bits of /proc/sys/kernel/tainted. */
export const oopsTaint = () => Number(readFileSync('/proc/sys/kernel/tainted', 'utf8')) & (128 | 512);

/** A record of the kernel log: its sequence number, priority (0 to 7) and first line. */
export interface KernelRecord { seq: number; priority: number; text: string }

/** The kernel log's records, read from /dev/kmsg without blocking. */
export function kernelLog(): KernelRecord[] {
  const fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  const records: KernelRecord[] = [];
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue; // records overwritten while reading
        throw e;
      }
      const record = buf.toString('utf8', 0, n);
      const semi = record.indexOf(';');
      const [prio, seq] = record.slice(0, semi).split(',').map(Number);
      records.push({ seq, priority: prio & 7, text: record.slice(semi + 1).split('\n')[0] });
    }
  } finally {
    closeSync(fd);
  }
  return records;
}

/** The sequence number of the kernel log's last record: where kernelTrouble() starts. */
export const kernelLogMark = () => kernelLog().reduce((m, r) => Math.max(m, r.seq), -1);

/**
 * What the kernel said at warning level or worse after `mark`, and whether
 * any of it is rxrpc's: a WARNING or oops at a line of net/rxrpc or in a
 * function of the module (the "Modules linked in" list, which names every
 * loaded module, aside).
 */
export function kernelTrouble(mark: number): { lines: string[]; rxrpc: boolean } {
  const lines = kernelLog().filter((r) => r.seq > mark && r.priority <= 4).map((r) => r.text);
  const rxrpc = lines.some((l) => !/^Modules linked in/.test(l) && /net\/rxrpc\/|\brxrpc_\w+\+0x|\[rxrpc\]/.test(l));
  return { lines, rxrpc };
}

/**
 * Fails if the kernel oopsed since `taint` (oopsTaint()) was read, or if a
 * warning it gave after `mark` (kernelLogMark()) is rxrpc's, or if the
 * warning bit came on with nothing in the log to say whose it was. A warning
 * of another part of the kernel is printed, not held against rxrpc.
 */
export function expectNoRxrpcTrouble(taint: number, mark: number): void {
  const now = oopsTaint();
  const { lines, rxrpc } = kernelTrouble(mark);
  if (lines.length) console.log(`the kernel, at warning level or worse, during the test:\n${lines.join('\n')}`);
  const oops = (now & 128) !== (taint & 128);
  const unexplained = now !== taint && !lines.some((l) => /^WARNING:/.test(l));
  if (oops || rxrpc || unexplained) {
    throw new Error(`the kernel's taint went from ${taint} to ${now}${rxrpc ? ', with a warning from rxrpc' : ''}:\n${lines.join('\n') || '(nothing in the kernel log)'}`);
  }
}
