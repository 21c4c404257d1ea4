// Integration tests, run inside the kernel VM (scripts/vm/run.sh), where the
// project tree is read-only and /tmp is the only writable place.
const path = require('node:path');

module.exports = {
  rootDir: path.join(__dirname, '..'),
  roots: ['<rootDir>/build/test/integration'],
  testMatch: ['**/*.test.js'],
  transform: {},
  testEnvironment: 'node',
  cacheDirectory: '/tmp/jest-cache',
  haste: { enableSymlinks: false },
  watchman: false,
  testTimeout: 120000,
};
