#!/usr/bin/env node
// npm run demo: the service-upgrade demonstration. It runs directly where the
// kernel offers AF_RXRPC and otherwise inside the kernel VM
// (RXRPC_KERNEL picks the kernel, default bookworm).
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const demo = path.join(root, 'build', 'scripts', 'upgrade-demo.js');
const args = process.argv.slice(2);

const hostHasRxrpc = () => require('./host').hostHasRxrpc(root);

const build = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

let r;
if (process.env.RXRPC_VM_KERNEL || hostHasRxrpc()) {
  r = spawnSync(process.execPath, [demo, ...args], { stdio: 'inherit' });
} else {
  const kernel = process.env.RXRPC_KERNEL || 'bookworm';
  console.log(`This kernel has no AF_RXRPC; running the demonstration in a ${kernel} kernel VM.`);
  r = spawnSync('bash', [path.join(root, 'scripts', 'vm', 'run.sh'), '--kernel', kernel, '--', process.execPath, demo, ...args], {
    cwd: root,
    stdio: 'inherit',
  });
}
process.exit(r.status ?? 1);
