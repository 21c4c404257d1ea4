import { readFileSync } from 'node:fs';
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
