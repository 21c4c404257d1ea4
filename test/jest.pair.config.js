// Tests across two VMs joined by a virtual link (scripts/vm/pair.sh): they
// run in VM A, against scripts/pair/agent.ts in VM B. The teardown tells the
// agent that the run is over.
const base = require('./jest.integration.config.js');

module.exports = {
  ...base,
  roots: ['<rootDir>/build/test/pair'],
  globalTeardown: '<rootDir>/build/test/pair/teardown.js',
  testTimeout: 600000,
};
