#!/usr/bin/env node
// Builds the native addon from source on Linux. Elsewhere the package still
// installs, and require('rxrpc') explains that AF_RXRPC needs Linux.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

if (process.platform !== 'linux') {
  console.warn(`rxrpc: AF_RXRPC needs Linux; not building the addon on ${process.platform}.`);
  process.exit(0);
}

// RXRPC_SANITIZE=1: the addon built with ASan and UBSan, in build-sanitize/
// (scripts/sanitize.js); the normal addon in build/ is left as it is.
if (process.env.RXRPC_SANITIZE === '1') {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'sanitize.js')], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}

// The project's pinned node-gyp when it is installed (development); otherwise
// the one npm hands to install scripts.
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = process.env.npm_config_node_gyp;
}
if (!gyp) {
  console.error('rxrpc: node-gyp not found; run this through npm or install node-gyp');
  process.exit(1);
}
const root = path.join(__dirname, '..');
// An already configured tree is rebuilt incrementally; --rebuild starts afresh.
const configured = require('node:fs').existsSync(path.join(root, 'build', 'Makefile'));
const verb = configured && !process.argv.includes('--rebuild') ? 'build' : 'rebuild';
const r = spawnSync(process.execPath, [gyp, verb], { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
