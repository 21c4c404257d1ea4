import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fixedModuleVersion } from '../../lib/server';
import { join } from 'node:path';

export const root = join(__dirname, '..', '..', '..');

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
export function reproducer(): string {
  const source = join(root, 'kernel', 'selftest', 'rxrpc_upgrade.c');
  const built = join(root, 'build', 'kernel', 'rxrpc_upgrade');
  if (existsSync(built) && statSync(built).mtimeMs >= statSync(source).mtimeMs) return built;
  const binary = '/tmp/rxrpc_upgrade';
  execFileSync('gcc', ['-O2', '-Wall', '-o', binary, source], { stdio: 'inherit' });
  return binary;
}
