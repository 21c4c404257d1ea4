// Host-side unit tests. TypeScript is compiled once by tsc (npm test does it);
// jest runs the compiled JavaScript, here and inside the kernel VM alike.
module.exports = {
  rootDir: __dirname,
  roots: ['<rootDir>/build/test/unit'],
  testMatch: ['**/*.test.js'],
  transform: {},
  testEnvironment: 'node',
};
