/**
 * rxrpc doctor's checks, on made-up file system roots (a blacklisted module,
 * a container, a kernel without modules, the fixed module), and on this host.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { diagnose, Diagnosis, formatDiagnosis, System } from '../../lib/cli/doctor';
import { containerState, distributionVersion, modprobeBlocks, moduleState, readSysctls } from '../../lib/cli/system';
import { rxrpc, SAMPLES } from './cli-support';

const RELEASE = '6.1.0-57-amd64';
let roots: string[] = [];

/** A root directory holding `files` (path -> contents). */
function root(files: Record<string, string>): string {
  const r = mkdtempSync(join(tmpdir(), 'rxrpc-doctor-'));
  roots.push(r);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(r, path)), { recursive: true });
    writeFileSync(join(r, path), text);
  }
  return r;
}

afterEach(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
  roots = [];
});

const eafnosupport = () => {
  throw Object.assign(new Error('socket EAFNOSUPPORT (Address family not supported by protocol)'), { code: 'EAFNOSUPPORT', errno: -97, syscall: 'socket' });
};
const socketWith = (cmsg: number) => () => ({ supportedCmsg: () => cmsg, close: () => {} });
const sys = (r: string, openSocket: System['openSocket'] = eafnosupport, release = RELEASE): System => ({ root: r, release, openSocket });
const ids = (d: Diagnosis) => d.findings.map((f) => `${f.level}:${f.id}`);

/** /proc/sys/net/rxrpc as captured on a kernel (test/unit/cli-samples/RELEASE/sysctl). */
function sysctlFiles(kernel: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(SAMPLES, kernel, 'sysctl'), 'utf8').trim().split('\n')) {
    const [name, value] = line.split(' = ');
    out[`proc/sys/net/rxrpc/${name}`] = `${value}\n`;
  }
  return out;
}

const STOCK_61: Record<string, string> = {
  'proc/modules': 'rxrpc 315392 0 - Live 0xffffffffc02f9000\nudp_tunnel 28672 1 rxrpc, Live 0x0\n',
  'sys/module/rxrpc/taint': '\n',
  'proc/version': readFileSync(join(SAMPLES, RELEASE, 'proc-version'), 'utf8'),
  ...sysctlFiles(RELEASE),
};

describe('cli doctor', () => {
  test('a working stock 6.1: usable, 14 control messages, upgrade known broken, max_backlog advice', () => {
    const d = diagnose(sys(root(STOCK_61), socketWith(14)));
    expect(d.afRxrpc).toEqual({ usable: true });
    expect(d.kernel).toEqual({ release: RELEASE, distribution: 'Debian 6.1.192-3' });
    expect(d.supportedCmsg).toEqual({ value: 14, name: 'RXRPC_CHARGE_ACCEPT' });
    expect(d.module).toMatchObject({ loaded: true, present: true, taint: '' });
    expect(d.module.version).toBeUndefined();
    expect(d.upgrade).toMatchObject({ knownBroken: true, fixedModule: false });
    expect(ids(d)).toEqual(['ok:af-rxrpc', 'info:cmsg', 'warn:upgrade', 'info:max-backlog']);
    expect(d.findings[0].summary).toMatch(/the rxrpc module is loaded; no module version/);
    expect(d.findings[1].summary).toMatch(/14 \(RXRPC_CHARGE_ACCEPT\): no RxGK/);
    expect(d.findings[3].action).toMatch(/sysctl -w net.rxrpc.max_backlog=31/);
    const text = formatDiagnosis(d);
    expect(text).toMatch(/^rxrpc doctor: Linux 6\.1\.0-57-amd64 \(Debian 6\.1\.192-3\)/);
    expect(text).toMatch(/max_backlog +10 +accept charges a server socket may hold/);
    expect(text).toMatch(/idle_conn_expiry +120000 ms +how long an idle client connection is kept/);
  });

  test('7.3: 19 control messages means RxGK challenge/response', () => {
    const d = diagnose(sys(root({ ...STOCK_61, ...sysctlFiles('7.3.4+deb13-amd64') }), socketWith(19), '7.3.4+deb13-amd64'));
    expect(d.findings.find((f) => f.id === 'cmsg')!.summary).toMatch(/19 \(RXRPC_RESP_RXGK_APPDATA\): the RxGK challenge\/response messages \(15-19\) are known/);
    expect(d.sysctls!.find((s) => s.name === 'rx_jumbo_max')).toEqual({ name: 'rx_jumbo_max', value: '46', unit: 'packets', meaning: expect.any(String) });
  });

  test('RxGK: present when a YFS-RxGK server key is taken; absent on ENOPKG, with advice where the messages exist; unknown on other errors', () => {
    const files = root({ ...STOCK_61, ...sysctlFiles('7.3.4+deb13-amd64') });
    const with_ = (rxgk: () => boolean, cmsg = 19) =>
      diagnose({ ...sys(files, socketWith(cmsg), '7.3.4+deb13-amd64'), rxgk });
    const present = with_(() => true);
    expect(present.rxgk).toBe(true);
    expect(present.findings.find((f) => f.id === 'rxgk')).toMatchObject({ level: 'info', summary: expect.stringMatching(/the module has it/) });
    const absent = with_(() => false);
    expect(absent.rxgk).toBe(false);
    expect(absent.findings.find((f) => f.id === 'rxgk')).toMatchObject({
      summary: expect.stringMatching(/not in this module .*ENOPKG/), action: expect.stringMatching(/CONFIG_RXGK/),
    });
    expect(with_(() => false, 14).findings.find((f) => f.id === 'rxgk')!.action).toBeUndefined();
    const unknown = with_(() => {
      throw Object.assign(new Error('add_key EDQUOT (Disk quota exceeded)'), { code: 'EDQUOT' });
    });
    expect(unknown.rxgk).toBeUndefined();
    expect(unknown.findings.find((f) => f.id === 'rxgk')!.summary).toMatch(/could not tell .*EDQUOT/);
    // Not asked when no socket opens.
    let asked = false;
    diagnose({ ...sys(files), rxgk: () => (asked = true) });
    expect(asked).toBe(false);
  });

  test('the fixed module (/sys/module/rxrpc/version upgrade-fix.N) is reported, and the upgrade warning dropped', () => {
    const d = diagnose(sys(root({ ...STOCK_61, 'sys/module/rxrpc/version': 'upgrade-fix.1\n', 'sys/module/rxrpc/taint': 'OE\n' }), socketWith(14)));
    expect(d.module).toMatchObject({ version: 'upgrade-fix.1', taint: 'OE' });
    expect(d.upgrade).toMatchObject({ knownBroken: false, fixedModule: true });
    const f = d.findings.find((x) => x.id === 'upgrade')!;
    expect(f).toMatchObject({ level: 'ok' });
    expect(f.summary).toMatch(/upgrade fix is loaded \(upgrade-fix\.1, taint OE\)/);
    // Another version string is not taken for the fix.
    const other = diagnose(sys(root({ ...STOCK_61, 'sys/module/rxrpc/version': '2.0\n' }), socketWith(14)));
    expect(other.upgrade.fixedModule).toBe(false);
  });

  test('blacklisted in /etc/modprobe.d: the file, the line and what to do; install /bin/false too', () => {
    const r = root({
      'proc/modules': 'ext4 1 0 - Live 0x0\n',
      [`lib/modules/${RELEASE}/kernel/net/rxrpc/rxrpc.ko`]: '',
      'etc/modprobe.d/cve-2026-43500.conf': '# Dirty Frag\nblacklist rxrpc\ninstall rxrpc \\\n  /bin/false\n',
      'usr/lib/modprobe.d/other.conf': 'blacklist floppy\ninstall rxrpc /sbin/modprobe --ignore-install rxrpc\n',
    });
    const blocks = modprobeBlocks(r);
    expect(blocks).toEqual([
      { file: '/etc/modprobe.d/cve-2026-43500.conf', line: 2, text: 'blacklist rxrpc', kind: 'blacklist' },
      { file: '/etc/modprobe.d/cve-2026-43500.conf', line: 3, text: 'install rxrpc /bin/false', kind: 'install' },
    ]);
    const d = diagnose(sys(r));
    expect(d.afRxrpc.usable).toBe(false);
    expect(d.afRxrpc.error).toMatchObject({ code: 'EAFNOSUPPORT', errno: -97, syscall: 'socket' });
    expect(ids(d)).toEqual(['error:af-rxrpc', 'error:modprobe-block', 'error:modprobe-block']);
    expect(d.findings[1].summary).toMatch(/cve-2026-43500\.conf:2 "blacklist rxrpc" blacklists rxrpc/);
    expect(d.findings[2].summary).toMatch(/never loads/);
    expect(d.findings[1].action).toMatch(/CVE-2026-43500.*remove that line and run modprobe rxrpc/);
  });

  test('a file in /etc/modprobe.d hides the one of the same name in /lib/modprobe.d; alias net-pf-33 off and the kernel command line count', () => {
    const r = root({
      'etc/modprobe.d/site.conf': 'options foo bar=1\n',
      'lib/modprobe.d/site.conf': 'blacklist rxrpc\n',
      'lib/modprobe.d/net.conf': 'alias net-pf-33 off\n',
      'proc/cmdline': 'quiet module_blacklist=floppy,rxrpc root=/dev/vda\n',
    });
    expect(modprobeBlocks(r).map((b) => `${b.kind} ${b.file}`)).toEqual(['alias-off /lib/modprobe.d/net.conf', 'cmdline /proc/cmdline']);
  });

  test('a blacklist on a machine where rxrpc is loaded anyway is only information', () => {
    const d = diagnose(sys(root({ ...STOCK_61, 'etc/modprobe.d/x.conf': 'blacklist rxrpc\n' }), socketWith(14)));
    expect(d.findings.find((f) => f.id === 'modprobe-block')).toMatchObject({ level: 'info' });
  });

  test('a container without the host\'s modules: says so, and that the host must load it', () => {
    const r = root({
      '.dockerenv': '',
      'proc/modules': '',
      'proc/1/cgroup': '0::/docker/abcdef\n',
      'proc/self/status': 'Name:\tnode\nCapEff:\t00000000a80425fb\n',
    });
    expect(containerState(r)).toEqual({ signs: ['/.dockerenv exists', '/proc/1/cgroup mentions docker'], canLoadModules: false });
    const d = diagnose(sys(r));
    expect(ids(d)).toEqual(['error:af-rxrpc', 'error:container']);
    expect(d.findings[1].summary).toMatch(/lacks CAP_SYS_MODULE/);
    expect(d.findings[1].action).toMatch(/on the host: modprobe rxrpc/);
  });

  test('a kernel without module support, and one built without AF_RXRPC', () => {
    const none = diagnose(sys(root({})));
    expect(none.module.moduleSupport).toBe(false);
    expect(none.findings.find((f) => f.id === 'modules')!.summary).toMatch(/no loadable module support/);
    const built = diagnose(sys(root({ 'proc/modules': '', [`boot/config-${RELEASE}`]: '# CONFIG_AF_RXRPC is not set\n', [`lib/modules/${RELEASE}/modules.builtin`]: '' })));
    expect(built.module.config).toBe('n');
    expect(ids(built)).toEqual(['error:af-rxrpc', 'error:config', 'error:module-file']);
  });

  test('the module installed but not loaded: modprobe rxrpc; compressed modules are found', () => {
    const r = root({ 'proc/modules': 'ext4 1 0 - Live 0x0\n', [`lib/modules/${RELEASE}/kernel/net/rxrpc/rxrpc.ko.xz`]: '', [`boot/config-${RELEASE}`]: 'CONFIG_AF_RXRPC=m\n' });
    expect(moduleState(r, RELEASE)).toMatchObject({ loaded: false, file: `/lib/modules/${RELEASE}/kernel/net/rxrpc/rxrpc.ko.xz`, config: 'm' });
    const d = diagnose(sys(r));
    expect(d.findings.find((f) => f.id === 'module-file')).toMatchObject({ summary: expect.stringMatching(/installed but not loaded/), action: 'as root: modprobe rxrpc' });
  });

  test('other failures are reported as they are, with the addon hint where it is missing', () => {
    const d = diagnose(sys(root({ 'proc/modules': '' }), () => {
      throw new Error('Could not locate the bindings file. Tried: build/Release/rxrpc.node');
    }));
    expect(d.findings[0]).toMatchObject({ level: 'error', action: expect.stringMatching(/npm rebuild rxrpc/) });
  });

  test('sysctls: every file read, the known ones explained', () => {
    const s = readSysctls(root(sysctlFiles('6.12.95+deb12-amd64')))!;
    expect(s.map((x) => x.name)).toEqual(['idle_ack_delay', 'idle_conn_expiry', 'idle_conn_fast_expiry', 'max_backlog',
      'reap_client_conns', 'rx_jumbo_max', 'rx_mtu', 'rx_window_size', 'soft_ack_delay']);
    expect(s.every((x) => x.meaning)).toBe(true);
    expect(readSysctls(root({}))).toBeUndefined();
    expect(readSysctls(root({ 'proc/sys/net/rxrpc/new_knob': '3\n' }))).toEqual([{ name: 'new_knob', value: '3' }]);
  });

  test('distribution versions from /proc/version', () => {
    expect(distributionVersion('Linux version 7.3.4+deb13-amd64 (...) #1 SMP PREEMPT_DYNAMIC Debian 7.3.4-1~bpo13+1 (2026-11-01)'))
      .toBe('Debian 7.3.4-1~bpo13+1');
    expect(distributionVersion('Linux version 6.18.44 (builder@x) #1 SMP')).toBeUndefined();
  });
});

describe('cli doctor on this host (no AF_RXRPC)', () => {
  test('--json: valid JSON, ok false, exit 3, and it says why', async () => {
    const r = await rxrpc(['doctor', '--json']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: false, command: 'doctor', afRxrpc: { usable: false, error: { code: 'EAFNOSUPPORT', syscall: 'socket' } } });
    expect(doc.findings[0]).toMatchObject({ id: 'af-rxrpc', level: 'error' });
    // Beyond the failed socket, at least one reason with what to do.
    expect(doc.findings.slice(1).some((f: { level: string; action?: string }) => f.level === 'error' && f.action)).toBe(true);
  });

  test('without --json: the findings for people, exit 3; --self-test says it cannot run', async () => {
    const r = await rxrpc(['doctor', '--self-test']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/error AF_RXRPC is unusable: socket\(AF_RXRPC\) failed with EAFNOSUPPORT/);
    expect(r.stdout).toMatch(/upgrade self-test not run: AF_RXRPC is unusable/);
  });
});
