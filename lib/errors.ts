import { abortCodeName, toSignedCode } from './constants';

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `${value.constructor.name}(${value.length})`;
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/** A wrong type for an argument: Node's ERR_INVALID_ARG_TYPE. */
export class InvalidArgTypeError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_TYPE';
  constructor(readonly argument: string, expected: string, readonly value: unknown) {
    super(`The "${argument}" argument must be ${expected}. Received ${show(value)}`);
    this.name = 'TypeError';
  }
}

/** A value outside its allowed range: Node's ERR_OUT_OF_RANGE. */
export class OutOfRangeError extends RangeError {
  readonly code = 'ERR_OUT_OF_RANGE';
  constructor(readonly argument: string, rule: string, readonly value: unknown) {
    super(`The value of "${argument}" is out of range. It must be ${rule}. Received ${show(value)}`);
    this.name = 'RangeError';
  }
}

/** A value of the right type that breaks a rule: Node's ERR_INVALID_ARG_VALUE. */
export class InvalidArgValueError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE';
  constructor(readonly argument: string, rule: string, readonly value: unknown) {
    super(`The argument "${argument}" ${rule}. Received ${show(value)}`);
    this.name = 'TypeError';
  }
}

/** Bytes that do not decode: a truncated or malformed structure. */
export class MalformedError extends Error {
  readonly code = 'ERR_RXRPC_MALFORMED';
  constructor(readonly what: string, message: string, readonly offset?: number) {
    super(`Malformed ${what}: ${message}${offset === undefined ? '' : ` at offset ${offset}`}`);
    this.name = 'MalformedError';
  }
}

/**
 * A call ended by an Rx abort. `local` is true when this side aborted it
 * (a user abort, a timeout, an AbortSignal); otherwise the abort came from the
 * peer or from the kernel itself (its own timeouts and protocol checks):
 * recvmsg reports both the same way, so they cannot be told apart.
 */
export class RxAbortError extends Error {
  readonly code = 'ERR_RX_ABORT';
  /** The abort code, signed (RX_* codes are negative). */
  readonly abortCode: number;
  /** RX_*, RXGEN_* or RXKAD* name of the code, when it has one. */
  readonly abortName: string | undefined;
  constructor(code: number, readonly local = false, detail?: string) {
    const signed = toSignedCode(code);
    const name = abortCodeName(signed);
    super(
      `Call ${local ? 'aborted locally' : 'aborted'} with code ${signed}` +
        `${name ? ` (${name})` : ''}${detail ? `: ${detail}` : ''}`,
    );
    this.name = 'RxAbortError';
    this.abortCode = signed;
    this.abortName = name;
  }
}

/** Fields that Node puts on its own system errors. */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function isErrnoError(err: unknown): err is ErrnoError {
  return err instanceof Error && typeof (err as ErrnoError).errno === 'number' &&
    typeof (err as ErrnoError).syscall === 'string';
}

/** The operation was aborted through an AbortSignal (Node's AbortError shape). */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** A call's timeout or deadline passed. */
export class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeout: number, what = 'Call') {
    super(`${what} timed out after ${timeout} ms`);
    this.name = 'TimeoutError';
  }
}

/** A reply came from a service other than the one the call was addressed to. */
export class WrongServiceError extends Error {
  readonly code = 'ERR_RXRPC_WRONG_SERVICE';
  constructor(readonly expected: number, readonly received: number, readonly data?: Buffer) {
    super(`Reply came from service ${received}, but the call was addressed to service ${expected}`);
    this.name = 'WrongServiceError';
  }
}

/** Why a write to a call cannot be taken, or undefined when it can. */
export function writeError(chunk: unknown, failed: Error | undefined, ended: boolean): Error | undefined {
  if (!(chunk instanceof Uint8Array)) return new InvalidArgTypeError('chunk', 'a Uint8Array', chunk);
  if (failed) return failed;
  if (ended) return Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
  return undefined;
}
