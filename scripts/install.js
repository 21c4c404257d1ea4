#!/usr/bin/env node
// The package's install script: builds the native addon from source on Linux
// (into build/Release, with node-gyp). It builds only the addon; the
// TypeScript is compiled before packing (dist/) or, in a checkout, by prepare.
// Elsewhere the package still installs, and creating a socket explains that
// AF_RXRPC needs Linux.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

if (process.platform !== 'linux') {
  console.warn(`rxrpc: AF_RXRPC needs Linux; not building the addon on ${process.platform}.`);
  process.exit(0);
}

const root = path.join(__dirname, '..');

// node-gyp: the project's pinned one in a checkout (a devDependency, under
// this package's own node_modules); otherwise the one npm hands to install
// scripts, as it does in a project that depends on rxrpc.
function findGyp() {
  try {
    const own = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
    if (own.startsWith(path.join(root, 'node_modules') + path.sep)) return own;
  } catch {
    // not a checkout with devDependencies
  }
  return process.env.npm_config_node_gyp;
}

const gyp = findGyp();
if (!gyp) {
  console.error('rxrpc: node-gyp not found; install the package with npm (which provides node-gyp) or install node-gyp');
  process.exit(1);
}
// An already configured tree is rebuilt incrementally; --rebuild starts afresh.
const configured = fs.existsSync(path.join(root, 'build', 'Makefile'));
const verb = configured && !process.argv.includes('--rebuild') ? 'build' : 'rebuild';
const r = spawnSync(process.execPath, [gyp, verb], { cwd: root, stdio: 'inherit' });
const status = r.status === null ? 1 : r.status;
if (status !== 0) {
  console.error(
    'rxrpc: building the native addon failed (see above). It is built from source at install time and ' +
      'needs python3, make and a C++ compiler (g++); on Debian or Ubuntu: apt-get install python3 make g++.',
  );
}
// RXRPC_SANITIZE=1: the addon built with ASan and UBSan as well, in
// build-sanitize/ (scripts/sanitize.js, a checkout only); build/ keeps the normal one.
if (status === 0 && process.env.RXRPC_SANITIZE === '1' && fs.existsSync(path.join(__dirname, 'sanitize.js'))) {
  const s = spawnSync(process.execPath, [path.join(__dirname, 'sanitize.js')], { stdio: 'inherit' });
  process.exit(s.status === null ? 1 : s.status);
}
process.exit(status);
