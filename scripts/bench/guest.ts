/**
 * Runs the benchmark suite here (a kernel with AF_RXRPC) and writes the
 * report as JSON to FILE (or stdout); progress goes to stderr.
 *
 *   node build/scripts/bench/guest.js RXBENCH [--smoke] [--memory-calls N] [--only small,memory] [--out FILE]
 *     [--pairs c/c,api/c] [--rounds N] [--inflight 1,64] [--warmup-calls N] [--memory-reducer] [--fresh 0|1] [--perf DIR [--perf-frequency HZ]]
 *
 * --pairs, --rounds and --inflight narrow a run to what a change is measured on.
 * --memory-reducer leaves V8's memory reducer on in the Node processes that
 * take turns (it drops their optimized code while they wait for their turn).
 * --perf profiles each small-call job with perf (data in DIR, default 999 Hz)
 * and adds the split of its samples to the row (report.ts prints it).
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
const pairs = option('--pairs')?.split(',');
const rounds = option('--rounds');
if (rounds) parameters.small.rounds = Number(rounds);
const fresh = option('--fresh');
if (fresh !== undefined) parameters.upgrade.fresh = fresh === '1';
const warmupCalls = option('--warmup-calls');
if (warmupCalls) parameters.warmupCalls = Number(warmupCalls);
if (argv.includes('--memory-reducer')) parameters.memoryReducer = true;
const inflight = option('--inflight');
if (inflight) parameters.small.inflight = inflight.split(',').map(Number);

const perfDir = option('--perf');
const perf = perfDir ? { dir: perfDir, frequency: Number(option('--perf-frequency') ?? 999) } : undefined;

runSuite({ rxbench: argv[0], smoke, parameters, only, pairs, perf }).then(
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
