#!/usr/bin/env node
// The rxrpc command. The CLI is compiled TypeScript (lib/cli/main.ts): in this
// repository tsc writes it to build/lib/cli/, in the published package it is in
// dist/cli/ (or build/lib/cli/ where the package still ships build/lib). The
// first of these that exists next to this file is the one that runs.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const candidates = [path.join(root, 'build', 'lib', 'cli', 'main.js'), path.join(root, 'dist', 'cli', 'main.js')];
const main = candidates.find((f) => fs.existsSync(f));
if (!main) {
  process.stderr.write(`rxrpc: the compiled command is missing (looked for ${candidates.map((f) => path.relative(root, f)).join(' and ')}); ` +
    'in a checkout of rxrpc, run npm install (or npx tsc -p tsconfig.json)\n');
  process.exit(3);
}
require(main).run();
