/** Test doubles for the rxrpc command: captured output, a given stdin, a stop button. */
import { join } from 'node:path';
import { Io } from '../../lib/cli/io';
import { main } from '../../lib/cli/main';

export interface Captured {
  stdout: string;
  stderr: string;
  /** stdout's bytes, for --raw. */
  bytes: Buffer;
}

export interface FakeIo extends Io {
  captured: Captured;
  /** Sends "SIGINT" (or another name) to whatever listens with onStop. */
  stop(signal?: string): void;
}

export function fakeIo(options: { stdin?: Uint8Array | string; tty?: boolean; root?: string; env?: Record<string, string> } = {}): FakeIo {
  const captured: Captured = { stdout: '', stderr: '', bytes: Buffer.alloc(0) };
  const listeners = new Set<(signal: string) => void>();
  const stdin = options.stdin;
  return {
    captured,
    stdout: {
      write(text: string | Uint8Array) {
        const b = typeof text === 'string' ? Buffer.from(text) : Buffer.from(text);
        captured.bytes = Buffer.concat([captured.bytes, b]);
        captured.stdout += b.toString('utf8');
        return true;
      },
    },
    stderr: {
      isTTY: options.tty ?? false,
      columns: 100,
      write(text: string | Uint8Array) {
        captured.stderr += typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
        return true;
      },
    },
    stdin: (async function* () {
      if (stdin !== undefined) yield typeof stdin === 'string' ? Buffer.from(stdin) : stdin;
    })(),
    env: options.env ?? {},
    root: options.root ?? '/',
    onStop(handler) {
      listeners.add(handler);
      return () => listeners.delete(handler);
    },
    stop(signal = 'SIGINT') {
      for (const l of [...listeners]) l(signal);
    },
  };
}

/** Runs the command in this process; resolves with its exit code and output. */
export async function rxrpc(args: string[], options: Parameters<typeof fakeIo>[0] = {}): Promise<{ code: number } & Captured> {
  const io = fakeIo(options);
  const code = await main(args, io);
  return { code, ...io.captured };
}

/** The repository's root, from build/test/unit (compiled) or test/unit. */
export const REPO = join(__dirname, '..', '..', ...(__dirname.includes(`${join('build', 'test')}`) ? ['..'] : []));

/** The /proc/net/rxrpc samples captured in the VM, one directory per kernel. */
export const SAMPLES = join(REPO, 'test', 'unit', 'cli-samples');
