/**
 * The one module that loads the compiled addon. Everything else depends on
 * the NativeBinding interface below, so tests can stand a fake in its place.
 */
/// <reference types="node" preserve="true" />
import { release } from 'node:os';

/** Completion of a sendmsgAsync; `rest` holds the bytes the kernel did not take, if any. */
export type SendDone = (token: number, result: number, error: Error | undefined, rest: Buffer | undefined) => void;
/** `count` records of the meta buffer were filled; `data` holds their bytes (undefined when they have none). */
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

/** add_key(2) and keyctl(2) as native/keys.cc exposes them; failures throw errors with code, errno, syscall. */
export interface NativeKeys {
  /** add_key(type, description, payload, keyring): the new (or updated) key's serial. */
  addKey(type: string, description: string, payload: Uint8Array | null, keyring: number): number;
  /** KEYCTL_GET_KEYRING_ID: the serial of a special keyring (-2 process, -3 session, -4 user, ...). */
  getKeyringId(id: number, create: boolean): number;
  revokeKey(serial: number): void;
  invalidateKey(serial: number): void;
  unlinkKey(serial: number, keyring: number): void;
  /** KEYCTL_DESCRIBE: "type;uid;gid;perm;description". */
  describeKey(serial: number): string;
  readKey(serial: number): Buffer;
  searchKey(keyring: number, type: string, description: string): number;
}

export interface NativeBinding {
  /** Linux keys (absent from fakes that do not need them). */
  keys?: NativeKeys;
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

/** Why rxrpc cannot run here: the system is not Linux (ERR_RXRPC_UNSUPPORTED_PLATFORM). */
function unsupportedPlatform(platform: string): Error {
  const err = new Error(`AF_RXRPC needs Linux; rxrpc cannot run on ${platform}`) as Error & { code: string; platform: string };
  err.code = 'ERR_RXRPC_UNSUPPORTED_PLATFORM';
  err.platform = platform;
  return err;
}

/** The compiled addon is missing (its install script did not run or failed): ERR_RXRPC_ADDON_NOT_BUILT. */
function addonNotBuilt(cause: unknown): Error {
  const err = new Error(
    'The rxrpc addon is not built (no build/Release/rxrpc.node): its install script did not run ' +
      '(npm --ignore-scripts) or failed. Run `npm rebuild rxrpc`; building needs python3, make and g++.',
    { cause },
  ) as Error & { code: string };
  err.code = 'ERR_RXRPC_ADDON_NOT_BUILT';
  return err;
}

/**
 * socket(2) fails with EAFNOSUPPORT when the kernel has no AF_RXRPC: the error
 * keeps Node's shape (code, errno, syscall) and says what to do about it.
 */
function explainSocketError(err: unknown): unknown {
  const e = err as Partial<{ code: string; errno: number; syscall: string }>;
  if (!(err instanceof Error) || e.code !== 'EAFNOSUPPORT' || e.syscall !== 'socket') return err;
  const explained = new Error(
    `socket EAFNOSUPPORT: AF_RXRPC is missing from this kernel (Linux ${release()}). Load the rxrpc module ` +
      'as root (modprobe rxrpc; in a container, on the host). If it will not load, it may be blacklisted ' +
      '(grep -r rxrpc /etc/modprobe.d) or not built for this kernel (CONFIG_AF_RXRPC).',
    { cause: err },
  ) as Error & { code: string; errno: number; syscall: string };
  explained.code = 'EAFNOSUPPORT';
  explained.errno = e.errno ?? -97;
  explained.syscall = 'socket';
  return explained;
}

/** Loads the addon once; where it cannot run, the error says why (see the helpers above). */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  if (process.platform !== 'linux') throw unsupportedPlatform(process.platform);
  let raw: NativeBinding;
  // RXRPC_ADDON names another build of the addon: the sanitized one (scripts/sanitize.js).
  const file = process.env.RXRPC_ADDON;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    raw = (file ? require(file) : require('bindings')('rxrpc')) as NativeBinding;
  } catch (err) {
    // bindings' own error for a file it could not find; a file that fails to load is Node's ERR_DLOPEN_FAILED.
    if (err instanceof Error && /Could not locate the bindings file/.test(err.message)) throw addonNotBuilt(err);
    throw err;
  }
  const NativeSocket = raw.Socket;
  function Socket(...args: ConstructorParameters<NativeBinding['Socket']>): NativeSocket {
    try {
      return new NativeSocket(...args);
    } catch (err) {
      throw explainSocketError(err);
    }
  }
  binding = { ...raw, Socket: Socket as unknown as NativeBinding['Socket'] };
  return binding;
}
