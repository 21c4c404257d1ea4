/**
 * Linux keys for AF_RXRPC, made and dropped through native/keys.cc
 * (add_key and keyctl, no libkeyutils).
 *
 * Keys go into the process keyring by default: every thread of the process
 * (the addon's sender threads included) searches it, while the thread keyring
 * is private to one thread and the session keyring is shared with other
 * processes. Keys are per network namespace as well: a key made in one is
 * not found from a socket of another.
 *
 * A LinuxKey this library made is "owned": close() revokes it and unlinks it
 * from the keyring it was added to, and so does the garbage collector if the
 * object is dropped without close(). A key referred to by description is not
 * owned and is left alone.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgTypeError, InvalidArgValueError } from '../errors';
import { loadNative, NativeBinding, NativeKeys } from '../native';

/** A keyring to add keys to: a special one by name, or a serial. */
export type KeyringRef = 'process' | 'session' | 'user' | 'user-session' | 'thread' | number;

const SPECIAL: Readonly<Record<string, number>> = {
  thread: -1, process: -2, session: -3, user: -4, 'user-session': -5,
};

export interface KeyOptions {
  /** Where the key is linked. Default 'process'. */
  keyring?: KeyringRef;
  /** The native binding (tests pass a fake). */
  binding?: NativeBinding;
}

function nativeKeys(binding?: NativeBinding): NativeKeys {
  const keys = (binding ?? loadNative()).keys;
  if (!keys) {
    throw Object.assign(new Error('this native binding has no key support'), { code: 'ERR_RXRPC_NO_KEYS' });
  }
  return keys;
}

export function checkKeyring(value: unknown, argument = 'keyring'): number {
  if (typeof value === 'string') {
    const id = SPECIAL[value];
    if (id === undefined) {
      throw new InvalidArgValueError(argument, `must be ${Object.keys(SPECIAL).map((k) => `'${k}'`).join(', ')} or a key serial`, value);
    }
    return id;
  }
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'a keyring name or a key serial', value);
  if (!Number.isInteger(value) || value <= 0 || value > 0x7fffffff) {
    throw new InvalidArgValueError(argument, 'must be a positive 32-bit key serial', value);
  }
  return value;
}

/** A string the kernel takes as a key description: 1 to 4095 bytes, no NUL. */
export function checkDescription(value: unknown, argument = 'description'): string {
  if (typeof value !== 'string') throw new InvalidArgTypeError(argument, 'of type string', value);
  if (value.length === 0 || value.includes('\0') || Buffer.byteLength(value) > 4095) {
    throw new InvalidArgValueError(argument, 'must be 1 to 4095 bytes without NUL characters', value);
  }
  return value;
}

interface Held {
  keys: NativeKeys;
  serial: number;
  keyring: number;
}

function drop({ keys, serial, keyring }: Held): void {
  // Revoked first: nothing can use it from here on, even where it is linked
  // elsewhere. Unlinked next, so that it is destroyed as soon as the last
  // reference (a socket's, a connection's) goes, not after the garbage
  // collector's delay (/proc/sys/kernel/keys/gc_delay, 300 s).
  try {
    keys.revokeKey(serial);
  } catch {
    // already revoked, or gone
  }
  try {
    keys.unlinkKey(serial, keyring);
  } catch {
    // already unlinked
  }
}

const collected = new FinalizationRegistry<Held>(drop);

let counter = 0;
const instance = randomBytes(4).toString('hex');

/** A description of our own for keys the library makes: unique in this process and across processes. */
export function uniqueDescription(prefix: string): string {
  return `${prefix}:${process.pid}:${instance}:${++counter}`;
}

/** A key in the kernel's keyring, by serial. */
export class LinuxKey {
  private dropped = false;
  /** @internal */
  protected readonly keys: NativeKeys;
  private readonly held: Held | undefined;

  /** @internal */
  constructor(
    keys: NativeKeys,
    readonly serial: number,
    readonly type: string,
    readonly description: string,
    /** Whether close() revokes it: true for keys this library made. */
    readonly owned: boolean,
    keyring: number,
  ) {
    this.keys = keys;
    if (owned) {
      this.held = { keys, serial, keyring };
      collected.register(this, this.held, this);
    }
  }

  get closed(): boolean {
    return this.dropped;
  }

  /** Revokes and unlinks the key if this library made it; otherwise only forgets it. Idempotent. */
  close(): void {
    if (this.dropped) return;
    this.dropped = true;
    if (this.held) {
      collected.unregister(this);
      drop(this.held);
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A keyring this library made; keys added to it are closed with it. */
export class Keyring extends LinuxKey {
  private readonly members: LinuxKey[] = [];

  /** Adds a key to this keyring (owned by it). */
  add(type: string, description: string, payload: Uint8Array | null): LinuxKey {
    if (this.closed) throw Object.assign(new Error('the keyring is closed'), { code: 'ERR_RXRPC_KEY_CLOSED' });
    const key = makeKey(this.keys, type, description, payload, this.serial);
    this.members.push(key);
    return key;
  }

  override close(): void {
    if (this.closed) return;
    for (const key of this.members.splice(0)) key.close();
    super.close();
  }
}

function makeKey(keys: NativeKeys, type: string, description: string, payload: Uint8Array | null, keyring: number): LinuxKey {
  checkDescription(type, 'type');
  checkDescription(description);
  if (payload !== null && !(payload instanceof Uint8Array)) {
    throw new InvalidArgTypeError('payload', 'a Uint8Array or null', payload);
  }
  const serial = keys.addKey(type, description, payload, keyring);
  return new LinuxKey(keys, serial, type, description, true, keyring);
}

/** add_key(2): a new key, owned (closing it revokes it). */
export function addKey(type: string, description: string, payload: Uint8Array | null, options: KeyOptions = {}): LinuxKey {
  const keyring = checkKeyring(options.keyring ?? 'process', 'options.keyring');
  return makeKey(nativeKeys(options.binding), type, description, payload, keyring);
}

/** A new keyring, owned, linked into `options.keyring` (the process keyring by default). */
export function createKeyring(description: string, options: KeyOptions = {}): Keyring {
  checkDescription(description);
  const keyring = checkKeyring(options.keyring ?? 'process', 'options.keyring');
  const keys = nativeKeys(options.binding);
  const serial = keys.addKey('keyring', description, null, keyring);
  return new Keyring(keys, serial, 'keyring', description, true, keyring);
}

/** What KEYCTL_DESCRIBE says about a key. */
export interface KeyDescription {
  type: string;
  uid: number;
  gid: number;
  /** Permission mask (possessor, user, group, other; 8 bits each). */
  perm: number;
  description: string;
}

export function describeKey(serial: number, binding?: NativeBinding): KeyDescription {
  const text = nativeKeys(binding).describeKey(serial);
  const [type, uid, gid, perm, ...rest] = text.split(';');
  return { type, uid: Number(uid), gid: Number(gid), perm: parseInt(perm, 16), description: rest.join(';') };
}
