/**
 * The one module that loads the compiled addon. Everything else depends on
 * the NativeBinding interface below, so tests can stand a fake in its place.
 */

/** Completion of a sendmsgAsync. */
export type SendDone = (token: number, result: number, error: Error | undefined) => void;
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
  /** Ends a blocking sendmsgAsync early (its completion follows); false if there is none with `token`. */
  interrupt(token: number): boolean;
  close(): void;
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
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  binding = require('bindings')('rxrpc') as NativeBinding;
  return binding;
}
