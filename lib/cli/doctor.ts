/**
 * rxrpc doctor: can this machine use AF_RXRPC, and what about it matters.
 * Each finding says what was seen and, where something can be done, what.
 */
import { readFileSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import {
  abortCodeName, AFS, Client, createServerKeyring, probeVL, RawSocket, RxAbortError, Server, upgradeWarning, XdrWriter,
} from '../index';
import { CommandSpec, flag, integerOption, Parsed } from './args';
import { Command, Context, emit, say } from './command';
import { describeError, EXIT } from './errors';
import { codeWithName } from './format';
import { Progress } from './io';
import {
  CMSG_NAMES, ContainerState, containerState, distributionVersion, modprobeBlocks, ModprobeBlock, ModuleState, moduleState,
  readSysctls, Sysctl,
} from './system';

export interface Finding {
  id: string;
  level: 'ok' | 'info' | 'warn' | 'error';
  summary: string;
  /** What to do about it. */
  action?: string;
}

/** What doctor looks at; tests give it a made-up root and socket. */
export interface System {
  root: string;
  release: string;
  /** Opens an AF_RXRPC socket (RawSocket) or throws why it cannot. */
  openSocket(): { supportedCmsg(): number; close(): void };
  /**
   * Whether the rxrpc module has the RxGK security class: true when it takes a
   * YFS-RxGK server key, false when add_key says ENOPKG; throws otherwise.
   */
  rxgk?(): boolean;
}

export interface SelfTest {
  probes: number;
  upgraded: number;
  original: number;
  aborted: Record<string, number>;
  failed: Record<string, number>;
  port: number;
}

export interface Diagnosis {
  kernel: { release: string; distribution?: string };
  node: string;
  afRxrpc: { usable: boolean; error?: Record<string, unknown> };
  supportedCmsg?: { value: number; name?: string };
  /** Whether the module has the RxGK security class (absent when it could not be told). */
  rxgk?: boolean;
  module: ModuleState;
  modprobe: ModprobeBlock[];
  container: ContainerState;
  sysctls?: Sysctl[];
  upgrade: { knownBroken: boolean; fixedModule: boolean; note?: string; selfTest?: SelfTest };
  findings: Finding[];
}

export function defaultSystem(root: string): System {
  return { root, release: osRelease(), openSocket: () => new RawSocket(), rxgk: hasRxgk };
}

/** Installs and at once revokes a throwaway YFS-RxGK server key (a keyring of its own in the process keyring). */
function hasRxgk(): boolean {
  try {
    createServerKeyring([1], [{ type: 'yfs-rxgk', kvno: 1, enctype: 20, secret: Buffer.alloc(32) }]).close();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOPKG') return false;
    throw err;
  }
}

/** Looks at everything that can be seen without sending a packet. */
export function diagnose(sys: System): Diagnosis {
  const findings: Finding[] = [];
  const mod = moduleState(sys.root, sys.release);
  const blocks = modprobeBlocks(sys.root);
  const container = containerState(sys.root);
  const sysctls = readSysctls(sys.root);
  let distribution: string | undefined;
  try {
    distribution = distributionVersion(readFileSync(join(sys.root, 'proc/version'), 'utf8'));
  } catch {
    distribution = undefined;
  }

  let usable = false;
  let error: Record<string, unknown> | undefined;
  let cmsg: Diagnosis['supportedCmsg'];
  try {
    const s = sys.openSocket();
    try {
      const value = s.supportedCmsg();
      cmsg = { value, ...(CMSG_NAMES[value] ? { name: CMSG_NAMES[value] } : {}) };
    } finally {
      s.close();
    }
    usable = true;
  } catch (err) {
    error = describeError(err);
    delete error.hint; // the findings are the hint
  }

  const fixed = mod.version !== undefined && /^upgrade-fix\.\d+$/.test(mod.version);
  if (usable) {
    const how = mod.loaded ? 'the rxrpc module is loaded' : mod.present ? 'rxrpc is built into the kernel' : 'AF_RXRPC is present';
    const ver = mod.version ? `version ${mod.version}` : 'no module version (a distribution\'s own module)';
    findings.push({ id: 'af-rxrpc', level: 'ok', summary: `AF_RXRPC works: a socket opened (${how}; ${ver})` });
  } else {
    findings.push(...whyUnusable(error, mod, blocks, container, sys.release));
  }
  for (const b of usable ? blocks : []) {
    findings.push({
      id: 'modprobe-block', level: 'info',
      summary: `${b.file}:${b.line} "${b.text}" would keep rxrpc from loading, but it is loaded already`,
      action: 'nothing now; after a reboot AF_RXRPC will be missing unless the module is loaded some other way',
    });
  }

  if (cmsg) {
    findings.push(cmsg.value >= 19
      ? { id: 'cmsg', level: 'info', summary: `highest control message: ${cmsg.value} (${cmsg.name ?? 'unknown'}): the RxGK challenge/response messages (15-19) are known` }
      : { id: 'cmsg', level: 'info', summary: `highest control message: ${cmsg.value} (${cmsg.name ?? 'unknown'}): no RxGK challenge/response messages (15-19 arrived in Linux 6.16)` });
  }

  const warning = upgradeWarning(sys.release);
  const knownBroken = warning !== undefined && !fixed;
  if (fixed) {
    findings.push({
      id: 'upgrade', level: 'ok', summary: `the rxrpc module with the server-side upgrade fix is loaded (${mod.version}${mod.taint ? `, taint ${mod.taint}` : ''})`,
      action: usable ? 'rxrpc doctor --self-test checks that upgrades work' : undefined,
    });
  } else if (warning && usable) {
    findings.push({
      id: 'upgrade', level: 'warn', summary: `server-side service upgrade: ${warning}`,
      action: 'do not rely on this machine as an upgrading server (clients fall back to the original service); ' +
        'load an rxrpc module with the upgrade fix (its /sys/module/rxrpc/version reads upgrade-fix.N), ' +
        'and check with rxrpc doctor --self-test',
    });
  }

  let rxgk: boolean | undefined;
  if (usable && sys.rxgk) {
    try {
      rxgk = sys.rxgk();
      findings.push(rxgk
        ? { id: 'rxgk', level: 'info', summary: 'RxGK (security index 6): the module has it (a YFS-RxGK server key was accepted)' }
        : {
          id: 'rxgk', level: 'info',
          summary: 'RxGK (security index 6): not in this module (a YFS-RxGK server key is refused with ENOPKG): RxGK calls cannot be made',
          ...(cmsg && cmsg.value >= 19
            ? { action: 'for RxGK, load an rxrpc module built with CONFIG_RXGK (the fixed module of this project\'s kernel/ directory has it on 7.x)' }
            : {}),
        });
    } catch (err) {
      findings.push({ id: 'rxgk', level: 'info', summary: `RxGK (security index 6): could not tell (${describeError(err).message ?? String(err)})` });
    }
  }

  const backlog = sysctls?.find((s) => s.name === 'max_backlog');
  if (backlog && Number(backlog.value) < 31) {
    findings.push({
      id: 'max-backlog', level: 'info',
      summary: `net.rxrpc.max_backlog = ${backlog.value}: a server's accept pool holds at most ${backlog.value} calls; ` +
        'on Linux 6.1, calls arriving when it is empty fail with RX_PROTOCOL_ERROR',
      action: 'on a busy server: sysctl -w net.rxrpc.max_backlog=31 (the kernel\'s limit)',
    });
  }

  return {
    kernel: { release: sys.release, ...(distribution ? { distribution } : {}) },
    node: process.version,
    afRxrpc: { usable, ...(error ? { error } : {}) },
    ...(cmsg ? { supportedCmsg: cmsg } : {}),
    ...(rxgk !== undefined ? { rxgk } : {}),
    module: mod,
    modprobe: blocks,
    container,
    ...(sysctls ? { sysctls } : {}),
    upgrade: { knownBroken, fixedModule: fixed, ...(warning ? { note: warning } : {}) },
    findings,
  };
}

/** Why the socket would not open, most specific reason first, each with what to do. */
function whyUnusable(error: Record<string, unknown> | undefined, mod: ModuleState, blocks: ModprobeBlock[],
  container: ContainerState, release: string): Finding[] {
  const out: Finding[] = [];
  const code = error?.code;
  const what = `${String(error?.message ?? 'unknown error')}`;
  if (code === 'ERR_RXRPC_UNSUPPORTED_PLATFORM') {
    return [{ id: 'af-rxrpc', level: 'error', summary: `AF_RXRPC is unusable: ${what}`, action: 'run it on Linux' }];
  }
  if (code !== 'EAFNOSUPPORT') {
    out.push({
      id: 'af-rxrpc', level: 'error', summary: `AF_RXRPC is unusable: ${what}`,
      action: /bindings file|ADDON_NOT_BUILT/.test(`${what} ${String(code)}`)
        ? 'build the addon: npm rebuild rxrpc (needs python3, make and g++)' : undefined,
    });
    return out;
  }
  out.push({ id: 'af-rxrpc', level: 'error', summary: `AF_RXRPC is unusable: socket(AF_RXRPC) failed with EAFNOSUPPORT on Linux ${release}` });
  for (const b of blocks) {
    const kind = b.kind === 'install'
      ? 'replaces loading rxrpc with another command, so it never loads'
      : b.kind === 'blacklist' ? 'blacklists rxrpc, so socket(AF_RXRPC) does not load it (modprobe rxrpc by hand still would)'
        : b.kind === 'alias-off' ? 'turns off the net-pf-33 alias that loads rxrpc for socket(AF_RXRPC)'
          : 'blacklists rxrpc on the kernel command line';
    out.push({
      id: 'modprobe-block', level: 'error', summary: `${b.file}:${b.line} "${b.text}" ${kind}`,
      action: 'many sites blacklisted rxrpc.ko after CVE-2026-43500 ("Dirty Frag"); make sure this kernel has the fix, ' +
        `then remove that line${b.kind === 'cmdline' ? ' from the boot loader\'s command line and reboot' : ' and run modprobe rxrpc as root'}`,
    });
  }
  if (container.signs.length) {
    out.push({
      id: 'container', level: 'error',
      summary: `this looks like a container (${container.signs.join('; ')}): modules are the host's to load` +
        `${container.canLoadModules === false ? ', and this process lacks CAP_SYS_MODULE' : ''}`,
      action: 'on the host: modprobe rxrpc (sockets are per network namespace, the module is shared)',
    });
  }
  if (!mod.moduleSupport) {
    out.push({
      id: 'modules', level: 'error', summary: 'this kernel has no loadable module support (no /proc/modules)',
      action: 'AF_RXRPC would have to be built in (CONFIG_AF_RXRPC=y): use a kernel that has it',
    });
  } else if (mod.loadingDisabled) {
    out.push({ id: 'modules', level: 'error', summary: 'module loading is disabled (kernel.modules_disabled = 1)', action: 'reboot, and load rxrpc before modules are disabled' });
  }
  if (mod.config === 'n') {
    out.push({ id: 'config', level: 'error', summary: `this kernel was built without AF_RXRPC (CONFIG_AF_RXRPC is not set in /boot/config-${release})`, action: 'use a kernel with CONFIG_AF_RXRPC=m or y (Debian\'s have it)' });
  }
  if (mod.moduleSupport && !mod.modulesDir && container.signs.length === 0) {
    out.push({ id: 'module-file', level: 'error', summary: `no modules are installed for this kernel (no /lib/modules/${release})`, action: `install the kernel's modules (Debian: linux-image-${release})` });
  } else if (mod.modulesDir && !mod.file && !mod.builtin) {
    out.push({ id: 'module-file', level: 'error', summary: `${mod.modulesDir} has no rxrpc.ko`, action: 'install the module package of this kernel, or a kernel that has AF_RXRPC' });
  } else if (mod.file && !mod.loaded && blocks.length === 0) {
    out.push({
      id: 'module-file', level: 'error', summary: `${mod.file} is installed but not loaded`,
      action: container.canLoadModules === false ? 'load it where CAP_SYS_MODULE is held: modprobe rxrpc on the host' : 'as root: modprobe rxrpc',
    });
  }
  if (out.length === 1) out[0].action = 'as root: modprobe rxrpc; if that fails, its message says why';
  return out;
}

/** VL GetCapabilities answered by each service with its own ID, so the answer shows who served it. */
function selfTestHandler(service: number): Buffer {
  return new XdrWriter().u32(1).u32(service).toBuffer();
}

/**
 * N upgrade probes, each from a fresh client (a new local endpoint, so a new
 * connection), against a Server of this process's own on loopback serving 52
 * and 2503 with the kernel's upgrade 52 -> 2503: what this kernel's
 * server-side upgrade does.
 */
export async function selfTest(probes: number, port: number | undefined, progress: Progress, timeout = 5000): Promise<SelfTest> {
  const address = '127.0.0.1';
  let server: Server | undefined;
  let chosen = port ?? 0;
  for (let attempt = 0; !server; attempt++) {
    chosen = port ?? 40000 + Math.floor(Math.random() * 9000);
    try {
      server = new Server({ address, port: chosen, services: [AFS.VL.service, AFS.VL.upgradeTo], upgrade: { from: AFS.VL.service, to: AFS.VL.upgradeTo } },
        (call) => selfTestHandler(call.service));
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || port !== undefined || attempt >= 20) throw err;
    }
  }
  server.on('warning', () => {}); // doctor reports it itself
  server.on('handlerError', () => {});
  const t: SelfTest = { probes, upgraded: 0, original: 0, aborted: {}, failed: {}, port: chosen };
  const bump = (r: Record<string, number>, k: string) => (r[k] = (r[k] ?? 0) + 1);
  try {
    for (let i = 0; i < probes; i++) {
      progress.update(`self-test: probe ${i + 1} of ${probes} (${t.upgraded} upgraded, ${t.original} original, ` +
        `${Object.values(t.aborted).reduce((a, b) => a + b, 0)} aborted)`);
      const client = new Client();
      try {
        const r = await probeVL(client, { address, port: chosen }, { timeout });
        if (r.upgraded) t.upgraded++;
        else if (r.abortCode !== undefined) bump(t.aborted, codeWithName(r.abortCode, abortCodeName(r.abortCode)));
        else t.original++;
      } catch (err) {
        if (err instanceof RxAbortError) bump(t.aborted, codeWithName(err.abortCode, err.abortName));
        else bump(t.failed, String((err as { code?: unknown }).code ?? (err as Error).name));
      } finally {
        client.close();
      }
    }
  } finally {
    progress.done();
    await server.close({ timeout: 1000 });
  }
  return t;
}

function selfTestFinding(t: SelfTest): Finding {
  const aborted = Object.entries(t.aborted).map(([k, n]) => `${n} aborted ${k}`);
  const failed = Object.entries(t.failed).map(([k, n]) => `${n} failed ${k}`);
  const parts = [`${t.upgraded} upgraded`, `${t.original} answered by the original service`, ...aborted, ...failed];
  const summary = `upgrade self-test, ${t.probes} probes 52 -> 2503 on 127.0.0.1:${t.port}: ${parts.join(', ')}`;
  if (t.upgraded === t.probes) return { id: 'self-test', level: 'ok', summary };
  return {
    id: 'self-test', level: 'warn', summary,
    action: 'this kernel cannot be relied on as an upgrading server; clients (this library\'s among them) fall back to the original service',
  };
}

const spec: CommandSpec = {
  name: 'doctor',
  summary: 'can this machine use AF_RXRPC, and what about it matters',
  usage: ['doctor [--self-test [--probes N] [--port P]] [--json]'],
  description: [
    'Reports the kernel version; whether AF_RXRPC is usable and, if not, why (no module, a container, blacklisted in ' +
    'modprobe.d, no module support); the highest control message the kernel supports; the net.rxrpc sysctls; whether ' +
    'the kernel\'s server-side service upgrade is known to work and whether the module with the upgrade fix is loaded ' +
    '(/sys/module/rxrpc/version). Each finding says what to do about it.',
    '--self-test also measures the upgrade: N probes 52 -> 2503 from fresh clients against a server of its own on ' +
    '127.0.0.1, counted as upgraded, answered by the original service, or aborted.',
    'Exit status: 0 when AF_RXRPC is usable, 3 when it is not.',
  ],
  options: {
    'self-test': { type: 'boolean', help: 'run the live loopback upgrade test' },
    probes: { type: 'string', value: 'N', help: 'probes in the self-test (default 20)' },
    port: { type: 'string', value: 'P', help: 'UDP port for the self-test server (default: a free one in 40000-48999)' },
  },
  positionals: { min: 0, max: 0, names: 'none' },
  examples: ['rxrpc doctor', 'rxrpc doctor --self-test --probes 50', 'rxrpc doctor --json | jq .afRxrpc'],
};

const MARK: Record<Finding['level'], string> = { ok: 'ok   ', info: 'info ', warn: 'warn ', error: 'error' };

export function formatDiagnosis(d: Diagnosis): string {
  const lines = [`rxrpc doctor: Linux ${d.kernel.release}${d.kernel.distribution ? ` (${d.kernel.distribution})` : ''}, Node ${d.node}`, ''];
  for (const f of d.findings) {
    lines.push(`  ${MARK[f.level]} ${f.summary}`);
    if (f.action) lines.push(`        do: ${f.action}`);
  }
  if (d.sysctls?.length) {
    lines.push('', 'net.rxrpc sysctls (/proc/sys/net/rxrpc):');
    const w = Math.max(...d.sysctls.map((s) => s.name.length));
    const v = Math.max(...d.sysctls.map((s) => `${s.value}${s.unit ? ` ${s.unit}` : ''}`.length));
    for (const s of d.sysctls) {
      lines.push(`  ${s.name.padEnd(w)}  ${`${s.value}${s.unit ? ` ${s.unit}` : ''}`.padEnd(v)}  ${s.meaning ?? ''}`.trimEnd());
    }
  }
  return `${lines.join('\n')}\n`;
}

async function run(parsed: Parsed, ctx: Context): Promise<number> {
  const probes = integerOption(parsed, 'probes', 1, 10000, 20);
  const port = integerOption(parsed, 'port', 1, 65535);
  const d = diagnose(defaultSystem(ctx.io.root));
  if (flag(parsed, 'self-test')) {
    if (d.afRxrpc.usable) {
      const t = await selfTest(probes, port, new Progress(ctx.io.stderr, !ctx.json));
      d.upgrade.selfTest = t;
      d.findings.push(selfTestFinding(t));
    } else {
      d.findings.push({ id: 'self-test', level: 'info', summary: 'upgrade self-test not run: AF_RXRPC is unusable' });
    }
  }
  emit(ctx, d.afRxrpc.usable, d as unknown as Record<string, unknown>);
  say(ctx, formatDiagnosis(d));
  return d.afRxrpc.usable ? EXIT.OK : EXIT.ENVIRONMENT;
}

export const doctor: Command = { spec, run };
