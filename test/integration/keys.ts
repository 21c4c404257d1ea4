/**
 * /proc/keys for the security tests: which keys exist, and a check that the
 * keys a test made are gone again after it.
 */
import { readFileSync } from 'node:fs';

export interface ProcKey {
  serial: string;
  /** The flags column: I instantiated, R revoked, D dead, Q in quota, ... ("-" where not set). */
  flags: string;
  type: string;
  description: string;
  line: string;
}

/**
 * The keys this process can see: serial (hex), type, description and summary.
 * The special keyrings ("_pid", "_ses", ...) are left out: the kernel makes
 * the process keyring on its first use, and it lives as long as the process.
 */
export function procKeys(): ProcKey[] {
  return readFileSync('/proc/keys', 'utf8').split('\n').filter(Boolean).map((line) => {
    const cols = line.trim().split(/\s+/);
    return { serial: cols[0], flags: cols[1], type: cols[7], description: cols.slice(8).join(' '), line };
  }).filter((k) => !(k.type === 'keyring' && k.description.startsWith('_')));
}

/** Whether /proc/keys shows the key revoked (flags "IR-----": the second flag). */
export const revoked = (k: ProcKey): boolean => k.flags[1] === 'R';

/**
 * Resolves once every key that exists now but not in `before` is gone, or is
 * revoked with only the kernel's own references left: the kernel destroys an
 * unlinked key when its last reference goes, and a connection that used it
 * holds one until the connection is reaped, which under load has taken longer
 * than `ms` (a revoked key can no longer be used, read or linked). Rejects,
 * naming them, if keys that are not revoked are left after `ms` milliseconds.
 */
export async function keysGone(before: ReadonlySet<string>, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const left = procKeys().filter((k) => !before.has(k.serial));
    if (left.length === 0) return;
    if (Date.now() > end) {
      const live = left.filter((k) => !revoked(k));
      if (live.length === 0) {
        process.stdout.write(`keys: revoked, still held by the kernel ${ms} ms on:\n${left.map((k) => `  ${k.line}`).join('\n')}\n`);
        return;
      }
      throw new Error(`keys left in /proc/keys, not revoked:\n${live.map((k) => k.line).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const serials = (): Set<string> => new Set(procKeys().map((k) => k.serial));
