/**
 * Exit codes of the rxrpc command and the errors that carry them. Scripts
 * can rely on these numbers; README documents them.
 */
import { RxAbortError } from '../index';

export const EXIT = {
  /** Done as asked. */
  OK: 0,
  /** The operation failed: the peer aborted, a timeout, a network error, input that does not decode. */
  FAILED: 1,
  /** The command line is wrong: unknown option, missing or malformed value. */
  USAGE: 2,
  /** This system cannot do it: no AF_RXRPC, the addon missing, not Linux. */
  ENVIRONMENT: 3,
  /** Stopped by SIGINT (128 + 2), as shells report it. */
  INTERRUPTED: 130,
} as const;

/** An error the command reports as one line (and an optional hint) with a given exit code. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number, readonly code: string, readonly hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** A mistake on the command line: exit 2. */
export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.USAGE, 'ERR_RXRPC_CLI_USAGE', hint);
    this.name = 'UsageError';
  }
}

/** Something this system lacks: exit 3. */
export class EnvironmentError extends CliError {
  constructor(message: string, code: string, hint?: string, options?: { cause?: unknown }) {
    super(message, EXIT.ENVIRONMENT, code, hint, options);
    this.name = 'EnvironmentError';
  }
}

/** Codes of errors that mean this system cannot run AF_RXRPC at all. */
const ENVIRONMENT_CODES = new Set(['EAFNOSUPPORT', 'ERR_RXRPC_UNSUPPORTED_PLATFORM', 'ERR_RXRPC_ADDON_NOT_BUILT', 'ERR_DLOPEN_FAILED']);

/** Library validation errors: a value from the command line that the library refused. */
const ARGUMENT_CODES = new Set(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE']);

/**
 * Errors as they come: an Error, or an object from another realm that looks
 * like one (jest runs tests in a context of their own, and errors the native
 * addon throws are made in the main one).
 */
export function isErrorLike(err: unknown): err is Error & { code?: unknown; errno?: unknown; syscall?: unknown } {
  return err instanceof Error || (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string');
}

/** The exit code for any error a subcommand lets through. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && ENVIRONMENT_CODES.has(code)) return EXIT.ENVIRONMENT;
  if (isErrorLike(err) && /Could not locate the bindings file/.test(err.message)) return EXIT.ENVIRONMENT;
  if (typeof code === 'string' && ARGUMENT_CODES.has(code)) return EXIT.USAGE;
  return EXIT.FAILED;
}

/** What to do about an error, when the command knows. */
export function hintOf(err: unknown): string | undefined {
  if (err instanceof CliError) return err.hint;
  const e = err as { code?: unknown; syscall?: unknown } | null;
  if (e?.code === 'EAFNOSUPPORT') return 'this kernel has no AF_RXRPC; `rxrpc doctor` says why and what to do';
  if (isErrorLike(err) && /Could not locate the bindings file/.test(err.message)) {
    return 'the native addon is not built: run `npm rebuild rxrpc` (needs python3, make and g++)';
  }
  if (e?.code === 'EADDRINUSE') return 'another socket serves that address and port; pick another port';
  return undefined;
}

/** A JSON-ready description of an error. */
export function describeError(err: unknown): Record<string, unknown> {
  if (!isErrorLike(err)) return { message: String(err) };
  const e = err;
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  if (e.code !== undefined) out.code = e.code;
  if (typeof e.errno === 'number') out.errno = e.errno;
  if (typeof e.syscall === 'string') out.syscall = e.syscall;
  if (err instanceof RxAbortError) {
    out.abortCode = err.abortCode;
    if (err.abortName) out.abortName = err.abortName;
    out.local = err.local;
  }
  const hint = hintOf(err);
  if (hint) out.hint = hint;
  return out;
}
