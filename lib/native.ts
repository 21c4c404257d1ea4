/**
 * The one module that loads the compiled addon. Everything else depends on
 * the NativeBinding interface below, so tests can stand a fake in its place.
 */

/** Completion of a sendmsgAsync; `rest` holds the bytes the kernel did not take, if any. */
export type SendDone = (token: number, result: number, error: Error | undefined, rest: Buffer | undefined) => void;
/** `count` records of the meta buffer were filled; `data` holds their bytes. */
export type RecvBatch = (count: number, data: Buffer | undefined, error: Error | undefined) => void;

/** One AF_RXRPC socket as native/rxrpc.cc exposes it. */
export interface NativeSocket {
  readonly fd: number;
  /** sendmsgAsync completions not yet delivered. */
  readonly pendingAsync: number;
  bind(sockaddr: Uint8Array): void;
  listen(backlog: number): void;
  setsockopt(level: number, name: number, value: Uint8Array | null): void;
  getsockopt(level: number, name: number, size: number): Buffer;
  /** Bytes sent, or -EAGAIN (-11); other failures throw. Never sleeps for an existing call. */
  sendmsg(name: Uint8Array | null, control: Uint8Array | null, data: Uint8Array | null, flags: number): number;
  /**
   * The same sendmsg on a thread of the socket, where it may sleep. With
   * `blocking`, on a bulk thread without MSG_DONTWAIT, repeated until all of
   * `data` is taken: the result is the bytes taken, or the error if none were.
   */
  sendmsgAsync(token: number, name: Uint8Array | null, control: Uint8Array | null, data: Uint8Array | null, flags: number, blocking?: boolean): void;
  /**
   * Ends a sendmsgAsync early (its completion follows): a queued one at once,
   * one in the kernel by waking its thread. False if there is none with
   * `token`, or it could not be woken.
   */
  interrupt(token: number): boolean;
  /** False when a send thread could not be stopped (the fd is closed when it stops). */
  close(): boolean | void;
  ref(): void;
  unref(): void;
}

export interface NativeBinding {
  Socket: new (family: number, meta: Uint8Array, onRecv: RecvBatch, onSendDone: SendDone, dataCapacity?: number) => NativeSocket;
  RECORD_SIZE: number;
  RECORD_NAME: number;
  RECORD_NAME_SIZE: number;
  RECORD_CONTROL: number;
  RECORD_CONTROL_SIZE: number;
  /** The addon's name for an errno value (lib/errno.ts must agree). */
  errnoName?: (errno: number) => string;
  /** Socket wrappers not yet collected in this process. */
  liveSockets?: () => number;
  /** The signal that wakes send threads (0 if none was free). */
  wakeSignal?: () => number;
}

/** Offsets of the int32 fields at the start of each received-message record. */
export const RECORD_FLAGS = 0;
export const RECORD_DATA_OFFSET = 4;
export const RECORD_DATA_LENGTH = 8;
export const RECORD_NAME_LENGTH = 12;
export const RECORD_CONTROL_LENGTH = 16;

export const EAGAIN = 11;

let binding: NativeBinding | undefined;

/** Loads the addon once; on systems other than Linux, explains why it cannot. */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  if (process.platform !== 'linux') {
    const err = new Error(`AF_RXRPC needs Linux; rxrpc cannot run on ${process.platform}`) as Error & { code: string };
    err.code = 'ERR_RXRPC_UNSUPPORTED_PLATFORM';
    throw err;
  }
  // RXRPC_ADDON names another build of the addon: the sanitized one (scripts/sanitize.js).
  const file = process.env.RXRPC_ADDON;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  binding = (file ? require(file) : require('bindings')('rxrpc')) as NativeBinding;
  return binding;
}
