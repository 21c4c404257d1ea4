/**
 * What `rxrpc doctor` reads about the machine, each check a pure function of
 * files under a root directory (so tests can hand it a made-up one): the
 * kernel's version, the rxrpc module and whether it may load, modprobe
 * configuration, containers, the net.rxrpc sysctls.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function read(root: string, path: string): string | undefined {
  try {
    return readFileSync(join(root, path), 'utf8');
  } catch {
    return undefined;
  }
}

function isDir(root: string, path: string): boolean {
  try {
    return statSync(join(root, path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * "Debian 6.1.192-3" from /proc/version, when the kernel is Debian's: the
 * package version comes last, after the compiler's ("gcc-12 (Debian 12.2.0-14)").
 */
export function distributionVersion(procVersion: string | undefined): string | undefined {
  const all = [...(procVersion ?? '').matchAll(/\b(Debian|Ubuntu)\s+(\d[^\s)]*)/g)];
  const m = all[all.length - 1];
  return m ? `${m[1]} ${m[2]}` : undefined;
}

export interface ModuleState {
  /** Listed in /proc/modules (loaded as a module). */
  loaded: boolean;
  /** /sys/module/rxrpc exists (loaded, or built in). */
  present: boolean;
  /** /sys/module/rxrpc/version: Debian's module has none; the fixed one reads "upgrade-fix.N" (as fixedModuleVersion() reads it). */
  version?: string;
  /** /sys/module/rxrpc/taint: O (out of tree), E (unsigned), ... */
  taint?: string;
  /** The kernel has loadable modules at all (/proc/modules exists). */
  moduleSupport: boolean;
  /** Where the kernel's modules are installed here, if anywhere. */
  modulesDir?: string;
  /** The rxrpc.ko file for this kernel, if installed. */
  file?: string;
  /** rxrpc is listed in modules.builtin. */
  builtin: boolean;
  /** CONFIG_AF_RXRPC from /boot/config-RELEASE: 'y', 'm', 'n' (not set), or undefined (no config file). */
  config?: 'y' | 'm' | 'n';
  /** /proc/sys/kernel/modules_disabled is 1. */
  loadingDisabled: boolean;
}

function findModuleFile(root: string, dir: string): string | undefined {
  const rx = join(dir, 'kernel', 'net', 'rxrpc');
  if (isDir(root, rx)) {
    const f = readdirSync(join(root, rx)).find((n) => /^rxrpc\.ko(\.(xz|zst|gz))?$/.test(n));
    if (f) return join(rx, f);
  }
  // Modules outside kernel/ (updates/, extra/ where a replacement may sit).
  for (const sub of ['updates', 'extra']) {
    const d = join(dir, sub);
    if (!isDir(root, d)) continue;
    const stack = [d];
    while (stack.length) {
      const cur = stack.pop()!;
      for (const n of readdirSync(join(root, cur))) {
        const p = join(cur, n);
        if (/^rxrpc\.ko(\.(xz|zst|gz))?$/.test(n)) return p;
        if (isDir(root, p)) stack.push(p);
      }
    }
  }
  return undefined;
}

export function moduleState(root: string, release: string): ModuleState {
  const procModules = read(root, 'proc/modules');
  const loaded = procModules !== undefined && /^rxrpc\s/m.test(procModules);
  const present = isDir(root, 'sys/module/rxrpc');
  const version = read(root, 'sys/module/rxrpc/version')?.trim() || undefined;
  const taint = read(root, 'sys/module/rxrpc/taint')?.trim();
  const modulesDir = [`lib/modules/${release}`, `usr/lib/modules/${release}`].find((d) => isDir(root, d));
  const file = modulesDir ? findModuleFile(root, modulesDir) : undefined;
  const builtin = modulesDir ? /(^|\/)rxrpc\.ko$/m.test(read(root, join(modulesDir, 'modules.builtin')) ?? '') : false;
  const config = read(root, `boot/config-${release}`);
  let af: ModuleState['config'];
  if (config !== undefined) {
    const m = /^CONFIG_AF_RXRPC=([ym])$/m.exec(config);
    af = m ? (m[1] as 'y' | 'm') : 'n';
  }
  return {
    loaded, present, ...(version ? { version } : {}), ...(taint !== undefined ? { taint } : {}),
    moduleSupport: procModules !== undefined, ...(modulesDir ? { modulesDir: `/${modulesDir}` } : {}),
    ...(file ? { file: `/${file}` } : {}), builtin, ...(af ? { config: af } : {}),
    loadingDisabled: read(root, 'proc/sys/kernel/modules_disabled')?.trim() === '1',
  };
}

/** A modprobe.d line that keeps rxrpc from loading. */
export interface ModprobeBlock {
  file: string;
  line: number;
  text: string;
  /** blacklist: no loading by alias (so not by socket(AF_RXRPC)); install: no loading at all; alias-off: the net-pf-33 alias disabled. */
  kind: 'blacklist' | 'install' | 'alias-off' | 'cmdline';
}

/** Where modprobe reads its configuration (modprobe.d(5)), in its order of precedence. */
export const MODPROBE_DIRS = ['etc/modprobe.d', 'run/modprobe.d', 'usr/local/lib/modprobe.d', 'lib/modprobe.d', 'usr/lib/modprobe.d'];

/** Logical lines of a modprobe.d file: comments dropped, backslash continuations joined. */
function logicalLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (!pending) start = i + 1;
    const l = raw.replace(/\r$/, '');
    if (l.endsWith('\\')) {
      pending += `${l.slice(0, -1)} `;
      return;
    }
    const full = `${pending}${l}`.trim().replace(/\s+/g, ' ');
    pending = '';
    if (full && !full.startsWith('#')) out.push({ line: start, text: full });
  });
  return out;
}

const MODULE = /^rxrpc$/;

export function modprobeBlocks(root: string): ModprobeBlock[] {
  const blocks: ModprobeBlock[] = [];
  const seen = new Set<string>();
  for (const dir of MODPROBE_DIRS) {
    if (!isDir(root, dir)) continue;
    let names: string[];
    try {
      names = readdirSync(join(root, dir)).filter((n) => n.endsWith('.conf')).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      // A file of the same name earlier in the list hides this one (modprobe.d(5)).
      if (seen.has(name)) continue;
      seen.add(name);
      const path = join(dir, name);
      const text = read(root, path);
      if (text === undefined) continue;
      for (const { line, text: l } of logicalLines(text)) {
        const [cmd, arg, ...rest] = l.split(/\s+/);
        const file = `/${path}`;
        if (cmd === 'blacklist' && arg && MODULE.test(arg.replace(/-/g, '_'))) blocks.push({ file, line, text: l, kind: 'blacklist' });
        else if (cmd === 'install' && arg && MODULE.test(arg.replace(/-/g, '_')) && !/\bmodprobe\b/.test(rest.join(' '))) {
          blocks.push({ file, line, text: l, kind: 'install' });
        } else if (cmd === 'alias' && arg === 'net-pf-33' && rest[0] === 'off') blocks.push({ file, line, text: l, kind: 'alias-off' });
      }
    }
  }
  const cmdline = read(root, 'proc/cmdline') ?? '';
  for (const word of cmdline.split(/\s+/)) {
    const m = /^(module_blacklist|modprobe\.blacklist)=(.*)$/.exec(word);
    if (m && m[2].split(',').some((n) => MODULE.test(n.replace(/-/g, '_')))) {
      blocks.push({ file: '/proc/cmdline', line: 1, text: word, kind: 'cmdline' });
    }
  }
  return blocks;
}

export interface ContainerState {
  /** Signs that this is a container (not the machine's own system). */
  signs: string[];
  /** CAP_SYS_MODULE in this process's effective set (needed to load a module). */
  canLoadModules: boolean | undefined;
}

const CAP_SYS_MODULE = 16;

export function containerState(root: string): ContainerState {
  const signs: string[] = [];
  if (existsSync(join(root, '.dockerenv'))) signs.push('/.dockerenv exists');
  if (existsSync(join(root, 'run/.containerenv'))) signs.push('/run/.containerenv exists');
  const cgroup = read(root, 'proc/1/cgroup');
  const m = cgroup && /(docker|kubepods|lxc|containerd|libpod|podman)/.exec(cgroup);
  if (m) signs.push(`/proc/1/cgroup mentions ${m[1]}`);
  const environ = read(root, 'proc/1/environ');
  const c = environ && /(?:^|\0)container=([^\0]*)/.exec(environ);
  if (c) signs.push(`init's environment has container=${c[1]}`);
  const status = read(root, 'proc/self/status');
  const cap = status && /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return { signs, canLoadModules: cap ? (BigInt(`0x${cap[1]}`) >> BigInt(CAP_SYS_MODULE) & 1n) === 1n : undefined };
}

export interface Sysctl {
  name: string;
  value: string;
  unit?: string;
  meaning?: string;
}

/** net.rxrpc sysctls (net/rxrpc/sysctl.c): what each controls. The time values are in milliseconds. */
export const SYSCTL_MEANINGS: Record<string, { unit?: string; meaning: string }> = {
  max_backlog: { meaning: 'accept charges a server socket may hold: the largest listen() backlog and Server backlog (4 to 31)' },
  rx_window_size: { unit: 'packets', meaning: 'receive window advertised to peers' },
  rx_mtu: { unit: 'bytes', meaning: 'largest packet this host asks peers to send' },
  rx_jumbo_max: { unit: 'packets', meaning: 'most subpackets in a jumbo packet peers may send' },
  req_ack_delay: { unit: 'ms', meaning: 'delay before an ACK a peer asked for (REQUEST_ACK) is sent' },
  soft_ack_delay: { unit: 'ms', meaning: 'delay before received DATA is soft-ACKed' },
  idle_ack_delay: { unit: 'ms', meaning: 'delay before an IDLE ACK once all data is in' },
  idle_conn_expiry: { unit: 'ms', meaning: 'how long an idle client connection is kept' },
  idle_conn_fast_expiry: { unit: 'ms', meaning: 'the same, once there are more than reap_client_conns' },
  reap_client_conns: { unit: 'connections', meaning: 'client connections beyond which idle ones expire fast' },
  max_client_conns: { unit: 'connections', meaning: 'most client connections at once' },
};

export function readSysctls(root: string): Sysctl[] | undefined {
  const dir = 'proc/sys/net/rxrpc';
  if (!isDir(root, dir)) return undefined;
  return readdirSync(join(root, dir)).sort().map((name) => {
    const value = (read(root, join(dir, name)) ?? '?').trim();
    const m = SYSCTL_MEANINGS[name];
    return { name, value, ...(m?.unit ? { unit: m.unit } : {}), ...(m ? { meaning: m.meaning } : {}) };
  });
}

/** Control message types (include/uapi/linux/rxrpc.h): what the highest supported one says about the kernel. */
export const CMSG_NAMES: Record<number, string> = {
  1: 'RXRPC_USER_CALL_ID', 2: 'RXRPC_ABORT', 3: 'RXRPC_ACK', 5: 'RXRPC_NET_ERROR', 6: 'RXRPC_BUSY', 7: 'RXRPC_LOCAL_ERROR',
  8: 'RXRPC_NEW_CALL', 9: 'RXRPC_ACCEPT', 10: 'RXRPC_EXCLUSIVE_CALL', 11: 'RXRPC_UPGRADE_SERVICE', 12: 'RXRPC_TX_LENGTH',
  13: 'RXRPC_SET_CALL_TIMEOUT', 14: 'RXRPC_CHARGE_ACCEPT', 15: 'RXRPC_OOB_ID', 16: 'RXRPC_CHALLENGED', 17: 'RXRPC_RESPOND',
  18: 'RXRPC_RESPONDED', 19: 'RXRPC_RESP_RXGK_APPDATA', 20: 'RXRPC_RESPONSE_APPDATA',
};
