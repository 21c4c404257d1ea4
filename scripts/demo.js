#!/usr/bin/env node
// npm run demo: the service-upgrade demonstration. It runs directly where the
// kernel offers AF_RXRPC (with whichever rxrpc module is loaded) and otherwise
// in the kernel VM twice: with Debian's stock rxrpc module, and with the fixed
// module built from kernel/ (the first run builds it; its progress is shown).
// RXRPC_KERNEL picks the kernel (default bookworm). Arguments are passed to
// build/scripts/upgrade-demo.js (scenarios: kernel, peer).
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const demo = path.join(root, 'build', 'scripts', 'upgrade-demo.js');
const { parseCommandLine, refuse, kernelOne } = require('./options');
const usage = 'usage: npm run demo [-- --help] [kernel] [peer]   (the scenarios to run, default both; RXRPC_KERNEL picks the kernel, default bookworm)';
const args = parseCommandLine('demo', usage, {}, { positionals: true }).positionals;
for (const a of args) if (a !== 'kernel' && a !== 'peer') refuse('demo', usage, `unknown scenario ${JSON.stringify(a)} (kernel, peer)`);
// The demonstration runs on the stock module and then on the fixed one ("+fix") itself.
const kernel = kernelOne('demo', usage, 'RXRPC_KERNEL', process.env.RXRPC_KERNEL || 'bookworm');
if (kernel.endsWith('+fix')) refuse('demo', usage, `RXRPC_KERNEL names a stock kernel (the demonstration runs its +fix too), not ${JSON.stringify(kernel)}`);

const hostHasRxrpc = () => require('./host').hostHasRxrpc(root);

const build = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

function inVm(kernel, demoArgs) {
  const r = spawnSync('bash', [path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--', process.execPath, demo, ...demoArgs], {
    cwd: root,
    stdio: 'inherit',
  });
  return r.status ?? 1;
}

if (process.env.RXRPC_VM_KERNEL || hostHasRxrpc()) {
  process.exit(spawnSync(process.execPath, [demo, ...args], { stdio: 'inherit' }).status ?? 1);
}
console.log(`This kernel has no AF_RXRPC; running the demonstration in a ${kernel} kernel VM, twice.`);
console.log(`\n=== 1 of 2: ${kernel} with Debian's stock rxrpc module`);
const stock = inVm(kernel, args.length ? args : ['kernel', 'peer']);
console.log(`\n=== 2 of 2: ${kernel} with the fixed rxrpc module (kernel/patches; built and cached on first use)`);
const fixed = inVm(`${kernel}+fix`, args.length ? args : ['kernel']);
if (fixed !== 0) {
  console.log(`\nThe fixed module could not be run on ${kernel} (status ${fixed}; the "vm:" and build-module.sh lines above say why).`);
  console.log('Scenario C of the first run shows the upgrade mechanism against a userspace Rx peer.');
}
process.exit(stock || fixed);
