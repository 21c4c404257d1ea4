#!/usr/bin/env node
// The prepare script: after `npm install` in a checkout, and when the package
// is installed from git. Builds dist/ (what the package runs; see
// build-dist.js) and the development build in build/ (lib, tests, scripts).
// Under npm pack and npm publish, prepack has just built dist/ and the
// development build is not part of the package: nothing to do.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') process.exit(0);
const root = path.join(__dirname, '..');
for (const args of [[path.join(__dirname, 'build-dist.js')],
  [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', path.join(root, 'tsconfig.json')]]) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}
