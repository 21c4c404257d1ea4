/**
 * Where the command reads and writes: the process's streams, or test doubles.
 * Progress goes to stderr, and only when stderr is a terminal.
 */

export interface Output {
  write(text: string | Uint8Array): unknown;
  /** True when this is a terminal (process.stderr.isTTY). */
  isTTY?: boolean;
  /** Terminal width, when known. */
  columns?: number;
}

export interface Io {
  stdout: Output;
  stderr: Output;
  /** Read whole by `call -`. */
  stdin: AsyncIterable<Uint8Array | string>;
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Calls `handler` when the user asks the command to stop (SIGINT, SIGTERM);
   * returns the function that stops listening.
   */
  onStop(handler: (signal: string) => void): () => void;
  /** The file system root the local checks read from ('/' unless a test says otherwise). */
  root: string;
}

/** The running process's streams and signals. */
export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    root: '/',
    onStop(handler) {
      const on = (signal: NodeJS.Signals) => handler(signal);
      process.on('SIGINT', on);
      process.on('SIGTERM', on);
      return () => {
        process.off('SIGINT', on);
        process.off('SIGTERM', on);
      };
    },
  };
}

/**
 * One status line on stderr, rewritten in place, for work that takes more
 * than a moment. Does nothing unless stderr is a terminal, so piped or
 * redirected output carries nothing extra.
 */
export class Progress {
  private shown = false;
  private readonly enabled: boolean;

  constructor(private readonly out: Output, enabled = true) {
    this.enabled = enabled && out.isTTY === true;
  }

  update(text: string): void {
    if (!this.enabled) return;
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    this.out.write(`\r\x1b[K${text.length > width ? `${text.slice(0, width - 3)}...` : text}`);
    this.shown = true;
  }

  /** Removes the line, so that what follows starts on a clean one. */
  done(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[K');
    this.shown = false;
  }
}

/** Reads a stream to its end. */
export async function readAll(input: AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
