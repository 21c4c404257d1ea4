/**
 * Validation of the values users hand over: service IDs, transport
 * addresses, and the service pair of an upgrade. Everything is checked
 * before any system call, and errors name the value and the rule.
 */
import { isIP } from 'node:net';
import { checkObject, InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';

/** A UDP transport address. */
export interface Destination {
  address: string;
  port: number;
}

/** A service at a transport address. */
export interface ServiceDestination extends Destination {
  service: number;
}

/** An upgrade: calls to `from` may be answered by `to`. */
export interface ServicePair {
  from: number;
  to: number;
}

/** A service ID: an integer from 1 to 65535. */
export function checkService(value: unknown, argument = 'service'): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new OutOfRangeError(argument, 'a service ID, an integer from 1 to 65535', value);
  }
  return value;
}

/** A UDP port; 0 only where `allowZero`. */
export function checkPort(value: unknown, argument = 'port', allowZero = false): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  const min = allowZero ? 0 : 1;
  if (!Number.isInteger(value) || value < min || value > 65535) {
    throw new OutOfRangeError(argument, `a UDP port, an integer from ${min} to 65535`, value);
  }
  return value;
}

/** An IPv4 or IPv6 address in text form; returns its family. */
// Addresses already checked, with their family (the same few peers come back on every call).
const families = new Map<string, 'IPv4' | 'IPv6'>();

export function checkAddress(value: unknown, argument = 'address'): 'IPv4' | 'IPv6' {
  if (typeof value !== 'string') throw new InvalidArgTypeError(argument, 'of type string', value);
  const known = families.get(value);
  if (known) return known;
  const family = isIP(value);
  if (family === 0 || value.includes('%')) {
    throw new InvalidArgValueError(argument, 'must be an IPv4 or IPv6 address (no host names, no zone)', value);
  }
  if (family === 6 && isMappedV4(value)) {
    // Linux 6.1 sends to such a target but its replies never arrive: say so now.
    throw new InvalidArgValueError(argument, 'is an IPv4-mapped IPv6 address, which AF_RXRPC does not handle; ' +
      'use the IPv4 address itself', value);
  }
  if (families.size >= 1024) families.clear();
  const name = family === 4 ? 'IPv4' : 'IPv6';
  families.set(value, name);
  return name;
}

/** ::ffff:a.b.c.d in any of its spellings (::ffff:7f00:1, 0:0:0:0:0:ffff:...). */
function isMappedV4(address: string): boolean {
  const halves = address.toLowerCase().split('::');
  const words = (part: string) => (part === '' ? [] : part.split(':'));
  const left = words(halves[0]);
  const right = halves.length > 1 ? words(halves[1]) : [];
  // A trailing dotted quad counts as two words.
  const count = (ws: string[]) => ws.reduce((n, w) => n + (w.includes('.') ? 2 : 1), 0);
  const all = [...left, ...new Array<string>(Math.max(0, 8 - count(left) - count(right))).fill('0'), ...right];
  const flat = all.flatMap((w) => (w.includes('.') ? ['v4', 'v4'] : [w]));
  return flat.length === 8 && flat.slice(0, 5).every((w) => Number.parseInt(w, 16) === 0) && Number.parseInt(flat[5], 16) === 0xffff;
}

const isWhole = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

export function checkDestination(value: unknown, argument = 'destination'): Destination & { family: 'IPv4' | 'IPv6' } {
  checkObject(value, argument, 'an object { address, port }');
  const d = value as Destination;
  // A known address and a valid port need no argument names (they are built only to be thrown).
  const known = typeof d.address === 'string' ? families.get(d.address) : undefined;
  const family = known ?? checkAddress(d.address, `${argument}.address`);
  const port = isWhole(d.port, 1, 65535) ? d.port : checkPort(d.port, `${argument}.port`);
  return { address: d.address, port, family };
}

export function checkServiceDestination(value: unknown, argument = 'destination'): ServiceDestination & { family: 'IPv4' | 'IPv6' } {
  const d = checkDestination(value, argument);
  const s = (value as ServiceDestination).service;
  const service = isWhole(s, 1, 65535) ? s : checkService(s, `${argument}.service`);
  return { address: d.address, port: d.port, family: d.family, service };
}

/** Two different service IDs, the upgrade from one to the other. */
export function checkServicePair(value: unknown, argument = 'upgrade'): ServicePair {
  checkObject(value, argument, 'an object { from, to }');
  const p = value as ServicePair;
  const from = checkService(p.from, `${argument}.from`);
  const to = checkService(p.to, `${argument}.to`);
  if (from === to) throw new InvalidArgValueError(argument, 'must name two different service IDs', value);
  return { from, to };
}

/**
 * A duration in milliseconds, or undefined: a number from 0 up, Infinity
 * meaning none (durations beyond setTimeout's 24.8 days are supported).
 */
export function checkDuration(value: unknown, argument: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (Number.isNaN(value) || value < 0) {
    throw new OutOfRangeError(argument, 'a number of milliseconds from 0 up (Infinity for none)', value);
  }
  return value;
}

/** A deadline, as a Date or milliseconds since the epoch, or undefined; Infinity means none. */
export function checkDeadline(value: unknown, argument: string): number | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Date) {
    const t = value.getTime();
    if (Number.isNaN(t)) throw new InvalidArgValueError(argument, 'must be a valid Date', value);
    return t;
  }
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'a Date or a number of ms since the epoch', value);
  if (Number.isNaN(value)) throw new OutOfRangeError(argument, 'a number of ms since the epoch (Infinity for none)', value);
  return value;
}

/** A boolean option, or undefined: truthy strings and numbers are not booleans. */
export function checkBoolean(value: unknown, argument: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(argument, 'of type boolean', value);
  return value;
}

/** A whole number within [min, max] (max may be Infinity), or undefined. */
export function checkCount(value: unknown, argument: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!(value >= min && value <= max) || (value !== Infinity && !Number.isInteger(value))) {
    throw new OutOfRangeError(argument, `an integer from ${min} to ${max === Infinity ? 'Infinity' : max}`, value);
  }
  return value;
}
