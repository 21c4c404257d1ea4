/**
 * Helpers for the bad-input suites (test/unit/bad-input-*.test.ts and
 * test/integration/bad-input.test.ts): every case checks the error's class,
 * its `code`, and that its message names the offending value the way the
 * library's show() renders it (shortened when long); every promise must
 * settle; and nothing may reach the process as an unhandled rejection, an
 * uncaught exception or a warning.
 */
import { runInThisContext } from 'node:vm';
import { show } from '../../lib/errors';
import { FakeKernel } from '../fake-kernel';

/** Any error class: the built-in TypeError and RangeError, or the library's own. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** For errors whose message cannot name a value (a closed socket, a malformed body). */
export const NO_VALUE = Symbol('no value');

/** Longest message accepted for any value, a 100,000-character one included. */
const MESSAGE_MAX = 400;

/**
 * Asserts that `err` is an instance of `cls` with `code`, and that its
 * message names `value` (as show() renders it, or the given text) and stays
 * short. Returns the error, typed.
 */
export function expectError<E extends Error = Error>(err: unknown, cls: ErrorClass, code: string,
  value: unknown = NO_VALUE, text?: string): E {
  expect(err).toBeInstanceOf(cls);
  const e = err as E & { code?: unknown };
  expect(e.code).toBe(code);
  if (text !== undefined) expect(e.message).toContain(text);
  else if (value !== NO_VALUE) expect(e.message).toContain(`Received ${show(value)}`);
  expect(e.message.length).toBeLessThan(MESSAGE_MAX);
  return e;
}

/** What `fn` threw; fails the test if it returned. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw, but the call returned');
}

/** Lets pending promise jobs and one turn of the event loop run (no timers are waited for). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * What `p` rejected with, once it has. A promise that never settles fails
 * the test through jest's timeout; one that resolves fails it here.
 */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    return err;
  }
  throw new Error(`expected a rejection, but the promise resolved with ${show(value)}`);
}

/**
 * For promises that must settle without the kernel doing anything (their
 * arguments are refused before any system call): settled once pending
 * promise jobs and one turn of the event loop have run. No timer is involved,
 * so this is a check of order, not of time.
 */
export async function rejectsAtOnce(p: unknown): Promise<unknown> {
  expect(p).toBeInstanceOf(Promise);
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let reason: unknown;
  (p as Promise<unknown>).then(() => (state = 'resolved'), (err) => {
    state = 'rejected';
    reason = err;
  });
  await turn();
  expect(state).toBe('rejected');
  return reason;
}

/**
 * True when nothing has reached the fake kernel: no sendmsg logged, and no
 * send waiting on a fake starter or bulk thread.
 */
export function nothingSent(kernel: FakeKernel): boolean {
  return kernel.sent.length === 0 && kernel.sockets.every((s) => s.starting.size === 0 && s.bulk.size === 0);
}

/**
 * Waits, one event-loop turn at a time, until `condition` holds: for outcomes
 * that come from the fake kernel's own timers. A condition that never holds
 * fails the test through jest's timeout; nothing here depends on how long a
 * turn takes.
 */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await turn();
}

/** The abort codes the fake kernel saw sent for `callId` on any socket. */
export function abortsOf(kernel: FakeKernel, callId: number): number[] {
  return kernel.sent.filter((s) => s.callId === callId && s.abort !== undefined).map((s) => s.abort!);
}

/** `options` with the fake kernel's binding, when they are an options object that names none; as they are otherwise. */
export function withBinding(options: unknown, kernel: FakeKernel): unknown {
  if (typeof options !== 'object' || options === null || Array.isArray(options) || 'binding' in options) return options;
  return { ...options, binding: kernel.binding };
}

/** An ArrayBuffer view whose buffer has been transferred away (its bytes are gone). */
export function detachedView(): Uint8Array {
  const ab = new ArrayBuffer(16);
  const view = new Uint8Array(ab, 4, 8);
  structuredClone(ab, { transfer: [ab] });
  return view;
}

/** An object whose every property read throws `error`. */
export function throwingGetters(error: Error): object {
  return new Proxy({}, { get: () => { throw error; } });
}

/** A Proxy that was revoked: any use of it throws. */
export function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/**
 * Records every unhandled rejection, uncaught exception and process warning
 * of the file it is called in, on the real process (jest gives each file a
 * copy of `process` whose listeners the real one never calls), and fails the
 * file's last test if there was any. Call at the top of a test file; the
 * returned function is the last test's body.
 */
export function guardProcess(): () => Promise<void> {
  const host = runInThisContext('process') as NodeJS.Process;
  const seen: string[] = [];
  const onRejection = (reason: unknown) => seen.push(`unhandled rejection: ${explain(reason)}`);
  const onException = (err: unknown) => seen.push(`uncaught exception: ${explain(err)}`);
  const onWarning = (w: Error) => seen.push(`warning: ${explain(w)}`);
  beforeAll(() => {
    host.on('unhandledRejection', onRejection);
    host.on('uncaughtException', onException);
    host.on('warning', onWarning);
  });
  afterAll(() => {
    host.off('unhandledRejection', onRejection);
    host.off('uncaughtException', onException);
    host.off('warning', onWarning);
  });
  return async () => {
    // Warnings are emitted on the next tick; let every queued job run first.
    await turn();
    await turn();
    expect(seen).toEqual([]);
  };
}

function explain(value: unknown): string {
  if (value instanceof Error) return `${value.name} ${(value as { code?: string }).code ?? ''} ${value.message}`;
  return show(value);
}
