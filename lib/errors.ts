import { types } from 'node:util';
import { abortCodeName, toSignedCode } from './constants';

const SHOW_MAX = 80;

/**
 * A value as an error message shows it: typed, and shortened when long. It
 * never throws and never runs a Proxy's traps: a value that cannot be looked
 * at is shown by its type.
 */
export function show(value: unknown): string {
  try {
    return render(value);
  } catch {
    return `a value of type ${typeof value}`;
  }
}

function render(value: unknown): string {
  let text: string;
  if (typeof value === 'string') {
    text = JSON.stringify(value.length > SHOW_MAX ? value.slice(0, SHOW_MAX) : value);
    return value.length > SHOW_MAX ? `${text.slice(0, -1)}..." (${value.length} characters)` : text;
  }
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'symbol') return value.toString();
  if (typeof value !== 'object' || value === null) return String(value);
  if (types.isProxy(value)) return 'Proxy';
  if (types.isBoxedPrimitive(value)) return `[${Object.prototype.toString.call(value).slice(8, -1)}: ${render(unbox(value))}]`;
  if (value instanceof DataView) return `DataView(${value.byteLength})`;
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name}(${(value as Uint8Array).length}${isDetached(value) ? ', detached' : ''})`;
  }
  if (types.isAnyArrayBuffer(value)) return `${Object.prototype.toString.call(value).slice(8, -1)}(${value.byteLength})`;
  if (value instanceof Error) return render(`${value.name}: ${value.message}`);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : `Date(${value.toISOString()})`;
  if (Array.isArray(value) && value.length > 16) return `Array(${value.length})`;
  try {
    text = JSON.stringify(value) ?? Object.prototype.toString.call(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  // An instance of a class says which: "EventTarget {}" rather than a bare "{}".
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null;
  const name = proto && !Array.isArray(value) ? proto.constructor?.name : undefined;
  if (typeof name === 'string' && name !== '' && name !== 'Object' && !text.startsWith('[object')) text = `${name} ${text}`;
  return text.length > SHOW_MAX ? `${text.slice(0, SHOW_MAX)}... (${text.length} characters)` : text;
}

/** The primitive inside a boxed one (new Number(1), new String('x')...). */
function unbox(value: object): unknown {
  if (types.isNumberObject(value)) return Number.prototype.valueOf.call(value);
  if (types.isStringObject(value)) return String.prototype.valueOf.call(value);
  if (types.isBooleanObject(value)) return Boolean.prototype.valueOf.call(value);
  if (types.isBigIntObject(value)) return BigInt.prototype.valueOf.call(value);
  return Symbol.prototype.valueOf.call(value);
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
    // A code that is not a 32-bit integer is kept as given, so that whoever
    // tries to send it sees what it was (the kernel cannot send it).
    const signed = Number.isInteger(code) && code >= -0x80000000 && code <= 0xffffffff ? toSignedCode(code) : code;
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

/**
 * A thrown value as an Error: an Error as it is; anything else (a string,
 * undefined, an object that cannot be turned into a string) wrapped, with
 * the value as `cause`. Making it never throws.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : show(value), { cause: value });
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

/** A request or reply larger than the limit set for it. */
export class SizeLimitError extends RangeError {
  readonly code = 'ERR_RXRPC_TOO_LARGE';
  constructor(readonly what: 'request' | 'reply', readonly limit: number, readonly received: number) {
    super(`The ${what} is larger than the limit of ${limit} bytes (${received} bytes so far); ` +
      `raise ${what === 'request' ? 'maxRequestBytes' : 'maxReplyBytes'} to accept it`);
    this.name = 'SizeLimitError';
  }
}

/**
 * An options or address object. Not null, and not an array: a list where
 * one object was meant ([options]) would otherwise lose every field silently.
 */
export function checkObject(value: unknown, argument: string, expected = 'an object'): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgTypeError(argument, expected, value);
  }
}

/** A non-zero 32-bit abort code (signed or unsigned), as the kernel accepts. */
export function checkAbortCode(value: unknown, argument = 'code'): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!Number.isInteger(value) || value === 0 || value < -0x80000000 || value > 0xffffffff) {
    throw new OutOfRangeError(argument, 'a non-zero 32-bit abort code (-2147483648 to 4294967295, not 0)', value);
  }
  return value;
}

/**
 * Emits 'error' where someone listens for it; otherwise the error becomes a
 * process warning. Errors here come from the event loop (a failed receive, a
 * failed accept charge), where throwing would end the process.
 */
export function emitError(emitter: { listenerCount(event: 'error'): number; emit(event: 'error', err: Error): boolean },
  err: Error): void {
  if (emitter.listenerCount('error') > 0) emitter.emit('error', err);
  else process.emitWarning(err);
}

/** True for a view of an ArrayBuffer that was transferred away (structuredClone, postMessage): its bytes are gone. */
export function isDetached(view: ArrayBufferView): boolean {
  if (view.byteLength !== 0 || !types.isArrayBuffer(view.buffer) || view.buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(view.buffer);
    return false;
  } catch {
    return true;
  }
}

/**
 * Why `value` cannot be taken as bytes, or undefined: it must be a
 * Uint8Array, and not a view of a detached ArrayBuffer (which reads as
 * empty: sending it would silently send nothing).
 */
export function bytesError(value: unknown, argument: string, expected = 'a Uint8Array'): Error | undefined {
  if (!(value instanceof Uint8Array)) return new InvalidArgTypeError(argument, expected, value);
  if (isDetached(value)) {
    return new InvalidArgValueError(argument, 'is a view of a detached ArrayBuffer (its bytes were transferred away)', value);
  }
  return undefined;
}

/** `value` as bytes, or the error bytesError() gives. */
export function checkBytes(value: unknown, argument: string): Uint8Array {
  const refused = bytesError(value, argument);
  if (refused) throw refused;
  return value as Uint8Array;
}

/** Why a write to a call cannot be taken, or undefined when it can. */
export function writeError(chunk: unknown, failed: Error | undefined, ended: boolean): Error | undefined {
  const refused = bytesError(chunk, 'chunk');
  if (refused) return refused;
  if (failed) return failed;
  if (ended) return Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
  return undefined;
}
