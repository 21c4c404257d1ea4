/**
 * The `security` options of Client and Server: their validation (before any
 * system call) and the keys they make from them.
 *
 * What the kernel allows, as measured (see README, "Security"):
 * - A client socket has one key (RXRPC_SECURITY_KEY) and one level
 *   (RXRPC_MIN_SECURITY_LEVEL, which is the level of its client calls), both
 *   set before bind. There is no control message for either, so per-call
 *   security means a local endpoint per (service, key, level): Client keeps
 *   one for each.
 * - A server socket has one keyring of "rxrpc_s" keys (RXRPC_SECURITY_KEYRING).
 *   Its RXRPC_MIN_SECURITY_LEVEL is not enforced on incoming calls: plain and
 *   authenticated callers are served alike (6.1, 6.12, 7.3), and recvmsg does
 *   not say which security a call has.
 */
import { createHash } from 'node:crypto';
import { InvalidArgTypeError, InvalidArgValueError } from '../errors';
import { kernelSeries } from '../kernel';
import { NativeBinding } from '../native';
import { RawSocket } from '../socket';
import { checkDescription, createKeyring, Keyring, LinuxKey, uniqueDescription, addKey } from './keyring';
import {
  checkLevel, encodeRxkadV1Payload, encodeXdrToken, RxkadToken, rxkadServerKey, SECURITY_LEVELS, SecurityLevel,
  ServerKeyPayload, xdrPayload, YfsRxgkToken, yfsRxgkServerKey,
} from './rxkad';

/** How client calls are secured. */
export interface ClientSecurity {
  /**
   * A token: the client makes an "rxrpc" key of it (and revokes that key when it closes). An rxkad
   * token, or a YFS-RxGK one (`type: 'yfs-rxgk'`, e.g. from mintRxgkToken), whose level the kernel
   * gives the connection whatever the socket asks: `level` defaults to it and must not differ.
   */
  token?: RxkadToken | ({ type: 'yfs-rxgk' } & YfsRxgkToken);
  /** Or an existing "rxrpc" key: its description, or a LinuxKey. Left alone when the client closes. */
  key?: string | LinuxKey;
  /** 'clear' (rxkad without packet protection), 'auth' (checksummed) or 'encrypt'. Default 'encrypt'. */
  level?: SecurityLevel;
}

/** A server key to install: rxkad (the default type) or YFS-RxGK. */
export type ServerKey =
  | { type?: 'rxkad'; /** The service's 8-byte DES key. */ secret: Uint8Array; /** Default: every bound service. */ service?: number }
  | { type: 'yfs-rxgk'; secret: Uint8Array; kvno: number; enctype: number; service?: number };

/** How a server accepts secured calls. */
export interface ServerSecurity {
  /** Keys to install: the server makes a keyring of them (revoked when it closes). */
  keys?: readonly ServerKey[];
  /** Or an existing keyring of "rxrpc_s" keys: its description, or a LinuxKey. */
  keyring?: string | LinuxKey;
  /** RXRPC_MIN_SECURITY_LEVEL; the kernel does not enforce it on incoming calls (the server warns). */
  minimumLevel?: SecurityLevel;
}

/** A checked ClientSecurity. */
export interface CheckedClientSecurity {
  level: number;
  /** Identifies the key and level: calls with equal ids may share a local endpoint. */
  id: string;
  /** The v1 payload of a token's key. */
  payload?: Buffer;
  key?: string | LinuxKey;
}

function checkObject(value: unknown, argument: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new InvalidArgTypeError(argument, 'an object', value);
  return value as Record<string, unknown>;
}

function checkKeyRef(value: unknown, argument: string): string | LinuxKey {
  if (value instanceof LinuxKey) {
    if (value.closed) throw new InvalidArgValueError(argument, 'must not be a closed key', value.description);
    return value;
  }
  if (typeof value !== 'string') throw new InvalidArgTypeError(argument, 'a key description or a LinuxKey', value);
  return checkDescription(value, argument);
}

/** The cell name of the XDR key a Client makes of an RxGK token (the kernel keeps it, nothing reads it). */
const RXGK_CELL = 'rxrpc';

const description = (key: string | LinuxKey) => (typeof key === 'string' ? key : key.description);

export function checkClientSecurity(value: unknown, argument = 'security'): CheckedClientSecurity {
  const s = checkObject(value, argument);
  let level = SECURITY_LEVELS[s.level === undefined ? 'encrypt' : checkLevel(s.level, `${argument}.level`)];
  if ((s.token === undefined) === (s.key === undefined)) {
    throw new InvalidArgValueError(argument, 'must have either a token or a key', value);
  }
  if (s.token !== undefined) {
    let payload: Buffer;
    if (typeof s.token === 'object' && s.token !== null && (s.token as { type?: unknown }).type === 'yfs-rxgk') {
      // The kernel runs an RxGK connection at its token's level, whatever the socket's
      // RXRPC_MIN_SECURITY_LEVEL (rxgk_init_connection_security; measured: a socket at auth
      // with an encrypt token sent sealed packets): a different level asked for would be ignored.
      const own = checkLevel((s.token as { level?: unknown }).level, `${argument}.token.level`);
      if (s.level !== undefined && s.level !== own) {
        throw new InvalidArgValueError(`${argument}.level`,
          `must be the RxGK token's level ('${own}') or absent: the kernel runs the connection at the token's level`, s.level);
      }
      level = SECURITY_LEVELS[own];
      payload = xdrPayload(RXGK_CELL, [encodeXdrToken(s.token, `${argument}.token`)]);
    } else {
      payload = encodeRxkadV1Payload(s.token as RxkadToken, `${argument}.token`);
    }
    return { level, payload, id: `token:${createHash('sha256').update(payload).digest('hex')}:${level}` };
  }
  const key = checkKeyRef(s.key, `${argument}.key`);
  return { level, key, id: `key:${typeof key === 'string' ? key : `#${key.serial}`}:${level}` };
}

/** The keys a Client made from tokens, one per token; revoked by close(). */
export class ClientKeys {
  private readonly made = new Map<string, LinuxKey>();
  constructor(private readonly binding?: NativeBinding) {}

  /** Sets the key and level on an unbound socket (making the key of a token on first use). */
  apply(raw: RawSocket, security: CheckedClientSecurity): void {
    raw.setSecurityKey(this.keyFor(security));
    raw.setMinSecurityLevel(security.level);
  }

  private keyFor(security: CheckedClientSecurity): string {
    if (security.key !== undefined) {
      if (typeof security.key !== 'string' && security.key.closed) {
        throw Object.assign(new Error(`the key ${security.key.description} was closed`), { code: 'ERR_RXRPC_KEY_CLOSED' });
      }
      return description(security.key);
    }
    const id = security.id.slice(0, security.id.lastIndexOf(':'));
    let key = this.made.get(id);
    if (!key) {
      key = addKey('rxrpc', uniqueDescription('rxrpc-client'), security.payload!, { binding: this.binding });
      this.made.set(id, key);
    }
    return key.description;
  }

  close(): void {
    for (const key of this.made.values()) key.close();
    this.made.clear();
  }
}

/** A checked ServerSecurity. */
export interface CheckedServerSecurity {
  keys?: ServerKeyPayload[];
  keyring?: string | LinuxKey;
  level?: number;
}

export function checkServerSecurity(value: unknown, services: readonly number[], argument = 'security'): CheckedServerSecurity {
  const s = checkObject(value, argument);
  const level = s.minimumLevel === undefined ? undefined : SECURITY_LEVELS[checkLevel(s.minimumLevel, `${argument}.minimumLevel`)];
  if (s.keys !== undefined && s.keyring !== undefined) {
    throw new InvalidArgValueError(argument, 'must have keys or a keyring, not both', value);
  }
  if (s.keyring !== undefined) return { keyring: checkKeyRef(s.keyring, `${argument}.keyring`), level };
  if (s.keys === undefined) return { level };
  return { keys: checkServerKeys(s.keys, services, `${argument}.keys`), level };
}

/** Server keys for the bound `services`, as "rxrpc_s" descriptions and payloads. */
export function checkServerKeys(value: unknown, services: readonly number[], argument = 'keys'): ServerKeyPayload[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidArgValueError(argument, 'must be a non-empty array of server keys', value);
  }
  const keys: ServerKeyPayload[] = [];
  value.forEach((entry: unknown, i: number) => {
    const arg = `${argument}[${i}]`;
    const k = checkObject(entry, arg);
    let targets = services;
    if (k.service !== undefined) {
      if (!services.includes(k.service as number)) {
        throw new InvalidArgValueError(`${arg}.service`, `must be one of the services (${services.join(', ')})`, k.service);
      }
      targets = [k.service as number];
    }
    for (const service of targets) {
      if (k.type === undefined || k.type === 'rxkad') keys.push(rxkadServerKey(service, k.secret as Uint8Array, `${arg}.secret`));
      else if (k.type === 'yfs-rxgk') {
        keys.push(yfsRxgkServerKey(service, k.kvno as number, k.enctype as number, k.secret as Uint8Array, `${arg}.secret`));
      } else throw new InvalidArgValueError(`${arg}.type`, "must be 'rxkad' or 'yfs-rxgk'", k.type);
    }
  });
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k.description)) throw new InvalidArgValueError(argument, `must not hold two keys for ${k.description}`, k.description);
    seen.add(k.description);
  }
  return keys;
}

/**
 * Sets a server socket's keyring and minimum level (before bind). Returns the
 * keyring made of `security.keys`, which the caller closes after the socket.
 */
export function applyServerSecurity(raw: RawSocket, security: CheckedServerSecurity, binding?: NativeBinding): Keyring | undefined {
  let ring: Keyring | undefined;
  try {
    if (security.keys) {
      ring = createKeyring(uniqueDescription('rxrpc-server'), { binding });
      for (const k of security.keys) ring.add('rxrpc_s', k.description, k.payload);
      raw.setSecurityKeyring(ring.description);
    } else if (security.keyring !== undefined) {
      raw.setSecurityKeyring(description(security.keyring));
    }
    if (security.level !== undefined) raw.setMinSecurityLevel(security.level);
  } catch (err) {
    ring?.close();
    throw err;
  }
  return ring;
}

/**
 * The warning for a server minimum level above 'clear' on kernels measured
 * not to enforce it (all of 6.1 to 7.3: net/rxrpc never reads it for
 * incoming calls), or undefined.
 */
export function minimumLevelWarning(level: number | undefined, kernelRelease: string): string | undefined {
  if (!level) return undefined;
  const series = kernelSeries(kernelRelease);
  if (series === undefined || series > 7003) return undefined;
  return `kernel ${kernelRelease}: RXRPC_MIN_SECURITY_LEVEL is not enforced on incoming calls ` +
    '(measured on Linux 6.1 to 7.3: plain and lower-level callers are served), and the server cannot tell a call\'s security';
}

/** Abort codes of the security classes: rxkad's (19270400-19270412) and RxGK's (1233242880-1233242891). */
export function isSecurityAbortCode(code: number): boolean {
  const u = code >>> 0;
  return (u >= 19270400 && u <= 19270412) || (u >= 1233242880 && u <= 1233242891);
}
