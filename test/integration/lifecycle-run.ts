import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freshPort } from './helpers';

const child = join(__dirname, '..', 'lifecycle-child.js');

/** Runs one scenario of test/lifecycle-child.ts in a process of its own and returns what it measured. */
export function run(scenario: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--expose-gc', child, scenario, String(freshPort())], {
    encoding: 'utf8', timeout: 240000,
  });
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  let result: Record<string, unknown>;
  try {
    result = JSON.parse(line);
  } catch {
    throw new Error(`${scenario}: no result (status ${r.status}, signal ${r.signal})\n${r.stdout}\n${r.stderr}`);
  }
  if (r.status !== 0) throw new Error(`${scenario} failed: ${JSON.stringify(result)}\n${r.stderr}`);
  return result;
}

/**
 * A child's error, as String(err) gave it (`Name: message`), thrown here as
 * an error of that name and message, so the failure reads as the child's
 * error did (scripts/jest-report.js judges a retried test by that line).
 */
export function rethrow(error: string | undefined): void {
  if (error === undefined) return;
  const m = /^(\w+): ([\s\S]*)$/.exec(error);
  const e = new Error(m ? m[2] : error);
  if (m) e.name = m[1];
  throw e;
}
