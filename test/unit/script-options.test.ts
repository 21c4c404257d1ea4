// The npm scripts that boot VMs (bench, conformance, soak, netem, demo) refuse what
// they do not understand before they build or boot anything: a mistyped option
// used to start a run of up to an hour with the defaults.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const run = (script: string, ...args: string[]) => runWith({}, script, ...args);
const runWith = (env: Record<string, string>, script: string, ...args: string[]) => {
  const file = join(__dirname, '..', '..', '..', 'scripts', `${script}.js`);
  const r = spawnSync(process.execPath, [file, ...args], {
    encoding: 'utf8', timeout: 30_000, env: { ...process.env, RXRPC_KERNEL: '', RXRPC_KERNELS: '', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe.each(['bench', 'conformance', 'soak', 'netem', 'demo'])('npm run %s: options', (script) => {
  test('--help and -h print the usage and run nothing', () => {
    for (const flag of ['--help', '-h']) {
      const r = run(script, flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: npm run ${script} \\[-- --help\\]`));
      expect(r.stderr).toBe('');
    }
  });

  test.each([
    [['--bogus'], "Unknown option '--bogus'"],
    [['--jsno'], "Unknown option '--jsno'"],
  ])('%j is refused with exit status 2 and the usage: %s', (args, message) => {
    const r = run(script, ...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${script}: ${message}`);
    expect(r.stderr).toContain(`usage: npm run ${script}`);
    expect(r.stdout).toBe('');
  });
});

test.each([
  ['bench', ['--kernel'], "'--kernel <value>' argument missing"],
  ['bench', ['--kernel', 'bookwrm'], 'not "bookwrm"'],
  ['bench', ['--kernel', 'bookworm,trixie-backports+fixed'], 'not "trixie-backports+fixed"'],
  ['bench', ['--only', 'small,zz'], 'not "zz"'],
  ['bench', ['--only', 'small,'], 'not ""'],
  ['bench', ['--icount', '11'], '--icount takes a shift from 0 to 10, not 11'],
  ['bench', ['--icount', '-1'], "'--icount' argument is ambiguous"],
  ['bench', ['--icount=-1'], '--icount takes a whole number from 0 on, not "-1"'],
  ['bench', ['--memory-calls', '1e5'], '--memory-calls takes a whole number from 1 on, not "1e5"'],
  ['bench', ['--memory-calls', '0'], 'not "0"'],
  ['bench', ['--wall-clock', '--icount', '3'], '--wall-clock and --icount exclude each other'],
  ['conformance', ['--n', 'many'], '--n takes a whole number from 1 on, not "many"'],
  ['conformance', ['--kernels', 'bookworm,sid'], 'not "sid"'],
  ['soak', ['--calls', '1,000'], '--calls takes a whole number from 1 on, not "1,000"'],
  ['soak', ['--inflight', '99999999999999999999'], 'not "99999999999999999999"'],
  ['soak', ['--kernel', 'bookworm,trixie-backports'], 'not "bookworm,trixie-backports"'],
  ['netem', ['--small', '-5'], "'--small' argument is ambiguous"],
  ['netem', ['--bulk', '2.5'], '--bulk takes a whole number from 1 on, not "2.5"'],
  ['netem', ['--kernel-b', 'trixie'], 'not "trixie"'],
  ...['bench', 'conformance', 'soak', 'netem'].map((script) => [script, ['stray'], "Unexpected argument 'stray'"] as [string, string[], string]),
  ['demo', ['stray'], 'unknown scenario "stray" (kernel, peer)'],
  ['demo', ['kernel', 'peers'], 'unknown scenario "peers"'],
])('%s %j is refused with exit status 2: %s', (script, args, message) => {
  const r = run(script, ...args);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(message);
  expect(r.stdout).toBe('');
});

test.each([
  ['sid', 'RXRPC_KERNEL takes one of bookworm, bookworm-backports or trixie-backports (with or without +fix), not "sid"'],
  ['bookworm+fix', 'RXRPC_KERNEL names a stock kernel (the demonstration runs its +fix too), not "bookworm+fix"'],
])('npm run demo with RXRPC_KERNEL=%s is refused with exit status 2', (kernel, message) => {
  const r = runWith({ RXRPC_KERNEL: kernel }, 'demo');
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(message);
});
