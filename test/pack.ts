// The package packed and installed into a fresh project by scripts/pack-test.js,
// for the tests that use the installed copy (test/unit/package.test.ts on the
// host, test/integration/package.test.ts in the kernel VM).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository (this file runs as build/test/pack.js). */
export const root = join(__dirname, '..', '..');

export interface PackResult {
  ok: boolean;
  dir: string;
  step?: string;
  error?: string;
  tarball: string;
  /** The project the tarball was installed into. */
  consumer: string;
  /** consumer/node_modules/rxrpc */
  installed: string;
  packSeconds: number;
  installSeconds: number;
}

/**
 * npm test packs once and passes the directory in RXRPC_PACK_DIR. Without it,
 * `create` packs and installs into out/pack-test now (jest run on its own, on
 * the host); otherwise an earlier run's out/pack-test is used. Throws with the
 * reason when there is no working install.
 */
export function packResult(create: boolean): PackResult {
  const given = process.env.RXRPC_PACK_DIR;
  const dir = given ?? join(root, 'out', 'pack-test');
  let result: PackResult;
  if (!given && create) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    result = require(join(root, 'scripts', 'pack-test.js')).packAndInstall(dir);
  } else {
    try {
      result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
    } catch {
      throw new Error(`no packed package in ${dir} (no result.json): npm test packs it; or run node scripts/pack-test.js`);
    }
  }
  if (!result.ok) throw new Error(`packing and installing the package failed (${result.step}): ${result.error}`);
  return result;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of the installed copy's processes: without RXRPC_ADDON,
 * which points the checkout's library at another build of the addon (the
 * sanitizer run sets it); the installed copy must load its own.
 */
function ownAddonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.RXRPC_ADDON === undefined) return env;
  const { RXRPC_ADDON: _ignored, ...rest } = env;
  return rest;
}

/** Runs node (or another command) to completion; never rejects. */
export function run(cwd: string, args: string[], options: { command?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(options.command ?? process.execPath, args, {
      cwd,
      env: ownAddonEnv(options.env ?? process.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeout ?? 120000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', (err) => resolve({ status: null, stdout, stderr: `${stderr}${err.message}` }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs node with a script in `cwd` and parses the last line it prints as JSON. */
export async function nodeJson<T = Record<string, unknown>>(cwd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<T> {
  const r = await run(cwd, args, { env });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    if (r.status !== 0) throw new Error();
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`node ${args.join(' ').slice(0, 200)} in ${cwd}: status ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
}
