/**
 * The rxrpc command as a whole on this host, which has no AF_RXRPC: help,
 * exit codes, --json on failure, and `npx rxrpc` running bin/rxrpc.js.
 */
import { spawnSync } from 'node:child_process';
import { COMMANDS } from '../../lib/cli/main';
import { REPO, rxrpc } from './cli-support';

describe('cli main', () => {
  test('rxrpc --help lists every command and the exit codes; no command is a usage error', async () => {
    const r = await rxrpc(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['doctor', 'probe', 'call', 'serve', 'stats', 'gen']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toMatch(/^ {2}2 {4}usage error/m);
    expect(r.stdout).toMatch(/^ {2}3 {4}this system cannot do it/m);
    const none = await rxrpc([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: rxrpc COMMAND');
  });

  test.each(COMMANDS.map((c) => c.spec.name))('rxrpc %s --help: usage, every option, --json, exit 0', async (name) => {
    const r = await rxrpc([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^rxrpc ${name}: `));
    expect(r.stdout).toContain(`  rxrpc ${name}`);
    const spec = COMMANDS.find((c) => c.spec.name === name)!.spec;
    for (const option of [...Object.keys(spec.options), 'json', 'help']) expect(r.stdout).toContain(`--${option}`);
    expect((await rxrpc(['help', name])).stdout).toBe(r.stdout);
  });

  test('an unknown command or option: exit 2, on stderr, or as JSON under --json', async () => {
    const r = await rxrpc(['frob']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no command "frob"; the commands are doctor, probe, call, serve, stats, gen/);
    const j = await rxrpc(['probe', '127.0.0.1', '--vl', '--frob', '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, command: 'probe', exitCode: 2, error: { code: 'ERR_RXRPC_CLI_USAGE' } });
    expect(j.stderr).toBe('');
  });

  test('--version prints the package version', async () => {
    const r = await rxrpc(['--version']);
    expect(r.stdout).toBe(`${require('../../../package.json').version}\n`);
  });

  test.each([
    [['probe', '127.0.0.1', '--vl']],
    [['call', '127.0.0.1:17003', '--service', '52', '--hex', '00010001']],
    [['serve', '--port', '17003', '--service', '52']],
    [['stats']],
  ])('without AF_RXRPC: rxrpc %j exits 3 and points at doctor', async (args) => {
    const r = await rxrpc(args);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/doctor/);
    const j = await rxrpc([...args, '--json']);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exitCode: 3 });
  });

  test('bad values are usage errors before anything is sent', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['probe', '127.0.0.1'], /say what to probe/],
      [['probe', '127.0.0.1', '--service', '52'], /--service needs --request HEX/],
      [['probe', '127.0.0.1', '--vl', '--count', '0'], /--count must be an integer from 1/],
      [['probe', '127.0.0.1:7003', '--service', '52', '--request', '00', '--upgrade-to', '52'], /--upgrade-to must differ/],
      [['call', '127.0.0.1:17003', '--hex', '00'], /--service N is required/],
      [['call', '127.0.0.1', '--service', '409', '--hex', '00'], /has no port/],
      [['call', '127.0.0.1:17003', '--service', '52'], /give the request/],
      [['call', '127.0.0.1:17003', '--service', '52', '--hex', '00', 'extra'], /unexpected arguments "extra"/],
      [['call', '127.0.0.1:17003', '--service', '52', '--hex', '00', '--raw', '--json'], /--raw and --json/],
      [['serve', '--service', '52'], /--port P is required/],
      [['serve', '--port', '17003', '--service', '52', '--service', '2503', '--upgrade', '52:1'], /must name the two --service IDs/],
      [['serve', '--port', '17003', '--service', '52', '--echo', '--abort', 'RX_USER_ABORT'], /choose one of/],
      [['stats', '127.0.0.1:7003'], /--rxstats/],
      [['stats', '--rxstats'], /--rxstats goes with HOST:PORT/],
      [['gen', 'x.xg'], /-o DIR is required/],
      [['doctor', '--probes', 'many'], /--probes must be an integer/],
    ];
    for (const [args, message] of cases) {
      const r = await rxrpc(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      // (under --json the message is in the JSON on stdout)
      expect(`${r.stderr}${r.stdout}`).toMatch(message);
    }
  });
});

describe('cli through npx on this host', () => {
  const npx = (args: string[]) => spawnSync('npx', ['--offline', 'rxrpc', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60000 });

  test('npx rxrpc --help', () => {
    const r = npx(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^rxrpc \d+\.\d+\.\d+: Rx RPC over Linux's AF_RXRPC sockets/);
  });

  test('npx rxrpc doctor --json: valid JSON, non-zero exit, and why', () => {
    const r = npx(['doctor', '--json']);
    expect(r.status).toBe(3);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.afRxrpc).toMatchObject({ usable: false, error: { code: 'EAFNOSUPPORT', errno: -97, syscall: 'socket' } });
    expect(doc.findings.length).toBeGreaterThan(1);
    expect(r.stderr).toBe('');
  });
});
