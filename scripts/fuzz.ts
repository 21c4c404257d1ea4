/**
 * npm run fuzz [-- --execs N] [--seed S] [--json FILE]: N executions in total
 * of the property-based targets of test/fuzz-targets.ts (split evenly across
 * them), in batches of fresh seeds, so that a failure is reported (shrunk to
 * a small counterexample) and the run goes on. Prints one line per target and
 * ends with "N executions, M failures"; exits 1 when M > 0.
 */
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { targets } from '../test/fuzz-targets';

const argv = process.argv.slice(2);
function option(name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}
const execs = Number(option('--execs') ?? 100000);
const seed = Number(option('--seed') ?? Date.now() % 0x7fffffff);
const json = option('--json');
if (!Number.isSafeInteger(execs) || execs < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run fuzz -- [--execs N] [--seed S] [--json FILE]');
  process.exit(2);
}

const BATCH = 10000;
const list = targets();
const rows: Array<{ target: string; executions: number; failures: number; seconds: number; counterexamples: string[] }> = [];
let done = 0;
let failures = 0;
const started = process.hrtime.bigint();
list.forEach((target, t) => {
  const share = Math.floor(execs / list.length) + (t < execs % list.length ? 1 : 0);
  const row = { target: target.name, executions: 0, failures: 0, seconds: 0, counterexamples: [] as string[] };
  const t0 = process.hrtime.bigint();
  for (let batch = 0; row.executions < share; batch++) {
    const numRuns = Math.min(BATCH, share - row.executions);
    const details = fc.check(target.property, { numRuns, seed: (seed + t * 7919 + batch * 104729) | 0 });
    if (details.failed) {
      // The run stopped at the failing execution: count up to it, and go on with the next batch.
      row.executions += details.numRuns;
      row.failures++;
      if (row.counterexamples.length < 3) {
        row.counterexamples.push(`seed ${details.seed}, path ${details.counterexamplePath}: ` +
          `${fc.stringify(details.counterexample)}: ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`);
      }
    } else {
      row.executions += numRuns;
    }
  }
  row.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  done += row.executions;
  failures += row.failures;
  rows.push(row);
  console.log(`${target.name.padEnd(48)} ${String(row.executions).padStart(10)} executions ${String(row.failures).padStart(3)} failures ${row.seconds.toFixed(1).padStart(8)} s`);
  for (const c of row.counterexamples) console.log(`  counterexample: ${c}`);
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
if (json) writeFileSync(json, `${JSON.stringify({ seed, seconds, executions: done, failures, rows }, null, 2)}\n`);
console.log(`seed ${seed}, ${seconds.toFixed(1)} s, Node ${process.version}`);
console.log(`${done} executions, ${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
