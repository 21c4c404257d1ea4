/**
 * Runs the benchmark suite here (a kernel with AF_RXRPC) and writes the
 * report as JSON to FILE (or stdout); progress goes to stderr.
 *
 *   node build/scripts/bench/guest.js RXBENCH [--smoke] [--memory-calls N] [--only small,memory] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { FULL, runSuite, SMOKE } from './suite';

const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
const parameters = structuredClone(smoke ? SMOKE : FULL);
const option = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const memoryCalls = option('--memory-calls');
if (memoryCalls) {
  const last = Number(memoryCalls);
  parameters.memory.checkpoints = [...parameters.memory.checkpoints.filter((n) => n < last), last];
}
const out = option('--out');
const only = option('--only')?.split(',');

runSuite({ rxbench: argv[0], smoke, parameters, only }).then(
  (report) => {
    const json = `${JSON.stringify(report)}\n`;
    if (out) writeFileSync(out, json);
    else process.stdout.write(json);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
