/**
 * Client: promise-based Rx calls and the client side of service upgrade.
 *
 * - probe() sends a request with the upgrade flag on a new connection and
 *   learns which service answered. While a probe to a destination is in
 *   flight, every other call to that destination waits; afterwards, calls
 *   addressed to the probed service go to the service it learned.
 * - Calls to one service go out through a local endpoint of their own (a
 *   socket bound to a private UDP port): the kernel shares client connections
 *   per (peer, key, security, upgrade flag) without the service ID, so a call
 *   to service B after one to service A at the same peer would otherwise ride
 *   A's connection and be served by A.
 * - A reply from a service other than the one asked for is an error.
 * - At most `maxCallsPerPeer` calls run at once per destination; the rest
 *   wait their turn in order.
 */
import { EventEmitter } from 'node:events';
import {
  RX_CALL_TIMEOUT, RX_INVALID_OPERATION, RX_PROTOCOL_ERROR, RX_USER_ABORT, RXGEN_CC_UNMARSHAL, RXGEN_OPCODE,
} from './constants';
import { formatIp, parseIp } from './codec';
import { Call, Endpoint, EndpointClosedError } from './endpoint';
import {
  AbortError, checkAbortCode, checkBytes, checkObject, emitError, InvalidArgTypeError, isErrnoError, OutOfRangeError,
  RxAbortError, SizeLimitError, TimeoutError, toError, WrongServiceError, writeError,
} from './errors';
import { NativeBinding } from './native';
import { ChunkQueue } from './queue';
import { CheckedClientSecurity, checkClientSecurity, ClientKeys, ClientSecurity } from './security/options';
import {
  checkBoolean, checkCount, checkDeadline, checkDestination, checkDuration, checkService, checkServiceDestination,
  Destination, ServiceDestination,
} from './services';
import { after } from './timers';
import { IdTable } from './idtable';

export interface KernelTimeouts {
  /** Hard limit on the whole call, in seconds. */
  hard?: number;
  /** Longest silence from the peer, in milliseconds. */
  idle?: number;
  /** Longest wait for an expected packet, in milliseconds. */
  normal?: number;
}

export interface CallOptions {
  /**
   * Milliseconds before the call fails with TimeoutError and is aborted with
   * RX_CALL_TIMEOUT (Infinity: none). See README for what the server hears of it.
   */
  timeout?: number;
  /** Absolute deadline (Date or ms since the epoch; Infinity: none); the earlier of timeout and deadline applies. */
  deadline?: Date | number;
  /** Aborts the call (on the wire with RX_USER_ABORT) and rejects with AbortError. */
  signal?: AbortSignal;
  /** Put the call on a connection of its own (RXRPC_EXCLUSIVE_CALL). */
  exclusive?: boolean;
  /** Timeouts enforced by the kernel (RXRPC_SET_CALL_TIMEOUT). */
  kernelTimeouts?: KernelTimeouts;
  /** Send to the service a probe learned for this destination (default true). */
  useLearnedService?: boolean;
  /** Largest reply accepted, in bytes (default: the client's maxReplyBytes); a larger one fails with SizeLimitError. */
  maxReplyBytes?: number;
  /** Security of this call: overrides the client's; null makes it anonymous. */
  security?: ClientSecurity | null;
}

/** A finished call. */
export interface CallResult {
  /** The reply body. */
  data: Buffer;
  /** The service that answered. */
  service: number;
  /** The peer that answered. */
  peer: Destination;
}

export interface ProbeOptions {
  /** The original service, the one every server of this kind offers. */
  service: number;
  /** The probe request: one both services accept (GetCapabilities exists for this). */
  request: Uint8Array;
  /** The service an upgrade leads to; a reply from any other service is an error. */
  upgradeTo?: number;
  timeout?: number;
  signal?: AbortSignal;
  /** Security of the probe: overrides the client's; null makes it anonymous. */
  security?: ClientSecurity | null;
}

/** What a probe learned about a destination. */
export interface ProbeResult {
  /** The service later calls to the original service will go to. */
  service: number;
  /** True when the server answered the probe from another service. */
  upgraded: boolean;
  /** The reply to the probe request, when there was one. */
  reply?: Buffer;
  /** The abort code that answered the probe, when it was aborted. */
  abortCode?: number;
  /**
   * Why the original service is used without a clean answer:
   * 'not-supported' -- the server aborted the request as unknown (RXGEN_OPCODE, RX_INVALID_OPERATION);
   * 'protocol-error' -- the probe was broken by RX_PROTOCOL_ERROR, the kernel's upgrade defect.
   */
  fallback?: 'not-supported' | 'protocol-error';
  /** One line saying what happened. */
  summary: string;
}

export interface ClientOptions {
  /**
   * Calls at once per destination; more wait in order. Default 8: a server's
   * accept pool holds 10 calls unless net.rxrpc.max_backlog is raised, and on
   * Linux 6.1 calls beyond it fail with RX_PROTOCOL_ERROR instead of waiting.
   */
  maxCallsPerPeer?: number;
  /** Give each service its own local endpoint (default true; see above). */
  isolateServices?: boolean;
  /** Messages read per wakeup, per socket (1 to 1024, default 64). */
  batch?: number;
  /**
   * Largest reply a call accepts, in bytes (default 4 MiB; Infinity for no
   * limit). Replies are read as they arrive, so without a limit a peer
   * decides how much memory a call takes.
   */
  maxReplyBytes?: number;
  /** Security of every call (default: anonymous); a call's own `security` overrides it. */
  security?: ClientSecurity;
  /** @internal The native binding (tests pass a fake). */
  binding?: NativeBinding;
}

/** Default limit on a reply's size (CallOptions.maxReplyBytes). */
export const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;

interface ClientEvents {
  /** A probe's result, when it was learned. */
  probe: [Destination, ProbeResult];
  error: [Error];
  close: [];
}

// The key of a destination in the maps below, made once per spelling of its
// address (schedule() looks it up for every call). Its address was checked.
const destKeys = new Map<string, Map<number, string>>();
let destKeyCount = 0;
const destKey = (d: Destination): string => {
  let byPort = destKeys.get(d.address);
  const hit = byPort?.get(d.port);
  if (hit !== undefined) return hit;
  if (destKeyCount >= 4096) {
    destKeys.clear();
    destKeyCount = 0;
    byPort = undefined;
  }
  if (!byPort) destKeys.set(d.address, (byPort = new Map()));
  // One peer, one key: '::1', '0::1' and '0:0:0:0:0:0:0:1' share their slots and what probes learned.
  const key = `${d.address.includes(':') ? formatIp(parseIp(d.address)) : d.address}|${d.port}`;
  byPort.set(d.port, key);
  destKeyCount++;
  return key;
};
const EMPTY = Buffer.alloc(0);
const NO_CALL_OPTIONS: CallOptions = Object.freeze({});
/** Each field of CallOptions.kernelTimeouts: its largest value and unit. */
const KERNEL_TIMEOUT_LIMITS = [['hard', 2147483, 'seconds'], ['idle', 3600000, 'milliseconds'], ['normal', 3600000, 'milliseconds']] as const;

/** Destinations whose idle slots the Client keeps before it sweeps them out (Client.releaseSlot). */
const SLOTS_SWEEP_MIN = 64;

/** A FIFO of async waiters with a limit on how many may run at once. */
class Slots {
  active = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  acquire(): Promise<void> | undefined {
    if (this.active < this.limit) {
      this.active++;
      return undefined;
    }
    return new Promise((resolve) => this.waiters.push(() => {
      this.active++;
      resolve();
    }));
  }
  release(): void {
    this.active--;
    const next = this.waiters.shift();
    if (next) next();
  }
  drop(waiter: () => void): void {
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.waiters.splice(i, 1);
  }
  get idle(): boolean {
    return this.active === 0 && this.waiters.length === 0;
  }
}

/**
 * A client call in its streaming form: write the request in parts, read the
 * reply as an async iterable, and `result` settles with who answered.
 */
export class ClientCall implements AsyncIterable<Buffer> {
  // The reply's queue, the result promise and the lists below are made when
  // first needed: Client.call uses none of them (it gathers the reply and
  // hears of the end through `onSettled`).
  private reply: ChunkQueue | undefined;
  private resultPromise: Promise<{ service: number; peer: Destination }> | undefined;
  private resolveResult: ((r: { service: number; peer: Destination }) => void) | undefined;
  private rejectResult: ((e: Error) => void) | undefined;
  private gathered: Buffer[] | undefined;
  private replyBytes = 0;
  private call: Call | undefined;
  private pending: Buffer[] | undefined;
  private ended = false;
  private failed: Error | undefined;
  private settled = false;
  private cleanup: Array<() => void> | undefined;
  private writeWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> | undefined;
  /** Told once when the call succeeds or fails (see whenSettled). */
  private onSettled: ((error: Error | undefined) => void) | undefined;

  private lane: Endpoint | undefined;
  private serviceId: number;
  /** @internal while it holds a slot: its number in the client's table of active calls, and its destination's key */
  activeSerial = 0;
  /** @internal */
  activeKey: string | undefined;

  /** @internal */
  constructor(
    private readonly client: Client,
    private readonly target: Destination & { family: 'IPv4' | 'IPv6' },
    service: number,
    private readonly options: CallOptions,
    private readonly maxReplyBytes: number,
    /** Services whose reply a probe accepts; null accepts any. Normal calls accept only their own. */
    private readonly probeExpect: ReadonlySet<number> | null | undefined = undefined,
  ) {
    this.serviceId = service;
    if (options.signal !== undefined || options.timeout !== undefined || options.deadline !== undefined) this.watch();
  }

  /** Settles when the call ends: the service and peer that answered, or why it failed. */
  get result(): Promise<{ service: number; peer: Destination }> {
    if (!this.resultPromise) {
      if (this.settled) {
        this.resultPromise = this.failed ? Promise.reject(this.failed) : Promise.resolve(this.answered());
      } else {
        this.resultPromise = new Promise((resolve, reject) => {
          this.resolveResult = resolve;
          this.rejectResult = reject;
        });
      }
      this.resultPromise.catch(() => {}); // failures also reach the reply iterator and write()
    }
    return this.resultPromise;
  }

  /** @internal `done` is told once the call succeeds or fails (at once if it has): Client.call's promise-free form of `result` */
  whenSettled(done: (error: Error | undefined) => void): void {
    if (this.settled) done(this.failed);
    else this.onSettled = done;
  }

  /** @internal the service and peer that answered (once the call has succeeded) */
  answered(): { service: number; peer: Destination } {
    return { service: this.call!.service, peer: { address: this.target.address, port: this.target.port } };
  }

  /** The service the call is sent to (once it has left: after any learned upgrade). */
  get service(): number {
    return this.serviceId;
  }

  private get upgrade(): boolean {
    return this.probeExpect !== undefined;
  }

  /** Whether a reply from `service` is one this call may take: its own service, or a probe's. */
  private accepts(service: number): boolean {
    if (this.probeExpect === undefined) return service === this.serviceId;
    return this.probeExpect === null || this.probeExpect.has(service);
  }

  /**
   * Writes part of the request; resolves when the kernel has taken it. The
   * bytes are the call's once this returns (taken or copied).
   */
  write(chunk: Uint8Array): Promise<void> {
    return this.push(chunk, false);
  }

  /** Writes the last part of the request (or none). */
  end(chunk?: Uint8Array): Promise<void> {
    return this.push(chunk ?? Buffer.alloc(0), true);
  }

  /**
   * Aborts the call on the wire with `code` (RX_USER_ABORT by default): the
   * call fails with a local RxAbortError. A code the kernel cannot send (0,
   * beyond 32 bits, not an integer) throws a RangeError and changes nothing.
   */
  abort(code: number = RX_USER_ABORT): void {
    checkAbortCode(code, 'code');
    this.fail(new RxAbortError(code, true), code);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.gathered) throw new Error('the reply of this call is gathered by Client.call');
    return this.replyQueue();
  }

  private replyQueue(): ChunkQueue {
    if (!this.reply) {
      this.reply = new ChunkQueue();
      if (this.settled) this.reply.end(this.failed);
    }
    return this.reply;
  }

  /** @internal the reply's chunks go to the returned array instead of the iterator */
  gather(): Buffer[] {
    this.gathered = [];
    return this.gathered;
  }

  /** @internal the whole request, from Client.call: no promise (a failure settles `result`) */
  sendAll(request: Uint8Array): void {
    if (this.failed) return;
    this.ended = true;
    if (this.call) {
      this.call.write(request, false);
      return;
    }
    if (this.lane && !this.pending) {
      // It may leave now: the send thread copies it.
      this.begin(request);
      return;
    }
    // Held until the call may leave: a copy, the caller's buffer is theirs again.
    (this.pending ??= []).push(Buffer.from(request));
    if (this.lane) this.begin();
  }

  private push(chunk: Uint8Array, last: boolean): Promise<void> {
    const refused = writeError(chunk, this.failed, this.ended);
    if (refused) return Promise.reject(refused);
    this.ended = last;
    if (this.call) {
      this.call.write(chunk, !last);
      return this.call.drained().then(() => {
        if (this.failed) throw this.failed;
      });
    }
    // Not started yet: held (a copy) until the call may leave, then sent as its first data.
    (this.pending ??= []).push(Buffer.from(chunk));
    const written = new Promise<void>((resolve, reject) => (this.writeWaiters ??= []).push({ resolve, reject }));
    if (this.lane) this.begin();
    return written;
  }

  /**
   * @internal The gate and a slot are ours: the call may leave, to `service`
   * through `lane`. The kernel call starts with the first data written.
   */
  start(lane: Endpoint, service: number): void {
    if (this.failed) return;
    this.lane = lane;
    this.serviceId = service;
    if (this.pending || this.ended) this.begin();
  }

  /** Starts the kernel call with what is pending, or with `first` (the caller's, copied by the send thread). */
  private begin(first?: Uint8Array): void {
    const endpoint = this.lane!;
    const pending = this.pending;
    this.pending = undefined;
    if (first === undefined) first = !pending ? EMPTY : pending.length === 1 ? pending[0] : Buffer.concat(pending);
    const k = this.options.kernelTimeouts;
    const target = { service: this.serviceId, address: this.target.address, port: this.target.port };
    let call: Call;
    try {
      call = !k && !this.upgrade && this.options.exclusive === undefined ? endpoint.startCall(target, first, !this.ended)
        : endpoint.startCall(target, first, !this.ended, {
          upgrade: this.upgrade,
          exclusive: this.options.exclusive || this.upgrade,
          kernelTimeouts: k ? kernelTimeoutWords(k) : undefined,
        });
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.call = call;
    call.owner = this;
    const waiters = this.writeWaiters;
    this.writeWaiters = undefined;
    if (!waiters) return;
    void call.drained().then(() => {
      for (const w of waiters) (this.failed ? w.reject(this.failed) : w.resolve());
    });
  }

  /** @internal a part of the reply (CallOwner) */
  callData(chunk: Buffer): void {
    const call = this.call!;
    if (!this.accepts(call.service)) {
      this.fail(new WrongServiceError(this.serviceId, call.service, chunk), RX_PROTOCOL_ERROR);
      return;
    }
    if (chunk.length === 0) return;
    this.replyBytes += chunk.length;
    if (this.replyBytes > this.maxReplyBytes) {
      this.fail(new SizeLimitError('reply', this.maxReplyBytes, this.replyBytes), RXGEN_CC_UNMARSHAL);
      return;
    }
    if (this.gathered) this.gathered.push(chunk);
    else this.replyQueue().push(chunk);
  }

  /** @internal the kernel call has ended (CallOwner) */
  callDone(error: Error | undefined): void {
    if (error) this.fail(error);
    else this.finish();
  }

  /** @internal fails the call with `error`, aborting it on the wire with `abortCode` when given */
  fail(error: Error, abortCode?: number): void {
    if (this.failed || this.settled) return;
    this.failed = error;
    if (this.call && abortCode !== undefined) this.call.abort(abortCode, error);
    const waiters = this.writeWaiters;
    this.writeWaiters = undefined;
    if (waiters) for (const w of waiters) w.reject(error);
    this.finish(error);
  }

  /** True once the call has succeeded or failed. */
  get isSettled(): boolean {
    return this.settled;
  }

  private finish(error?: Error): void {
    if (this.settled) return;
    this.settled = true;
    const cleanup = this.cleanup;
    this.cleanup = undefined;
    if (cleanup) for (const c of cleanup) c();
    this.reply?.end(error);
    if (error) this.rejectResult?.(error);
    else this.resolveResult?.(this.answered());
    this.client.release(this);
    this.onSettled?.(error);
  }

  private watch(): void {
    const { signal } = this.options;
    if (signal) {
      const onAbort = () => this.fail(new AbortError(undefined, { cause: signal.reason }), RX_USER_ABORT);
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      (this.cleanup ??= []).push(() => signal.removeEventListener('abort', onAbort));
    }
    let ms = this.options.timeout ?? Infinity;
    const deadline = checkDeadline(this.options.deadline, 'options.deadline');
    if (deadline !== undefined) ms = Math.min(ms, Math.max(0, deadline - Date.now()));
    if (ms === Infinity) return;
    const limit = ms;
    if (limit <= 0) {
      this.fail(new TimeoutError(limit));
      return;
    }
    (this.cleanup ??= []).push(after(limit, () => this.fail(new TimeoutError(limit), RX_CALL_TIMEOUT)));
  }
}

export class Client extends EventEmitter<ClientEvents> {
  /** Local endpoints by service (0 for all when services are not isolated), per family. */
  private readonly lanes4 = new Map<number, Endpoint>();
  private readonly lanes6 = new Map<number, Endpoint>();
  /** Lanes of secured calls: the key and level are per socket, so one lane per security as well. */
  private readonly securedLanes = new Map<string, Endpoint>();
  private readonly slots = new Map<string, Slots>();
  private readonly gates = new Map<string, Promise<void>>();
  private readonly learned = new Map<string, ProbeResult>();
  private readonly maxCallsPerPeer: number;
  private readonly maxReplyBytes: number;
  private readonly isolate: boolean;
  private readonly binding: NativeBinding | undefined;
  private readonly batch: number | undefined;
  /** Calls that hold a slot, by their activeSerial (an IdTable, not a Map: see idtable.ts). */
  private readonly active = new IdTable<ClientCall>();
  private nextSerial = 1;
  /** Above this many destinations, idle ones' slots are swept out (see releaseSlot). */
  private slotsSweepAt = SLOTS_SWEEP_MIN;
  private readonly security: CheckedClientSecurity | undefined;
  private readonly keys: ClientKeys;
  private closed = false;
  private refed = true;

  constructor(options: ClientOptions = {}) {
    super();
    checkObject(options, 'options');
    this.maxCallsPerPeer = checkCount(options.maxCallsPerPeer, 'options.maxCallsPerPeer', 1, 1000) ?? 8;
    this.maxReplyBytes = checkCount(options.maxReplyBytes, 'options.maxReplyBytes', 0, Infinity) ?? DEFAULT_MAX_REPLY_BYTES;
    this.isolate = checkBoolean(options.isolateServices, 'options.isolateServices') ?? true;
    this.batch = checkCount(options.batch, 'options.batch', 1, 1024);
    if (options.binding !== undefined && (typeof options.binding !== 'object' || options.binding === null)) {
      throw new InvalidArgTypeError('options.binding', 'a native binding', options.binding);
    }
    this.binding = options.binding;
    this.security = options.security === undefined ? undefined : checkClientSecurity(options.security, 'options.security');
    this.keys = new ClientKeys(options.binding);
  }

  /**
   * Makes a call and resolves with the whole reply. `request` is a
   * Uint8Array or an (async) iterable of them; if the iterable throws, the
   * call is aborted (RX_USER_ABORT) and the promise rejects with that error.
   */
  call(destination: ServiceDestination, request: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    options: CallOptions = NO_CALL_OPTIONS): Promise<CallResult> {
    if (!(request instanceof Uint8Array)) return this.callIterable(destination, request, options);
    let call: ClientCall;
    try {
      checkBytes(request, 'request');
      call = this.openCall(destination, options);
    } catch (err) {
      return Promise.reject(err);
    }
    // The reply is gathered as it arrives, without the stream machinery, and
    // the call's end settles this one promise.
    const reply = call.gather();
    return new Promise<CallResult>((resolve, reject) => {
      call.whenSettled((error) => {
        if (error) {
          reject(error);
          return;
        }
        const { service, peer } = call.answered();
        // A copy: the chunks are views of a whole receive batch, which must not stay pinned.
        resolve({ data: Buffer.concat(reply), service, peer });
      });
      // A failed write is the call's failure.
      call.sendAll(request);
    });
  }

  /** call() with a request given as an (async) iterable. */
  private async callIterable(destination: ServiceDestination, request: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    options: CallOptions): Promise<CallResult> {
    const source = iteratorOf(request);
    const call = this.openCall(destination, options);
    const reply = call.gather();
    // The call's own end (its timeout, signal, or the client closing)
    // settles it even when the source stops yielding.
    const feeding = feed(call, source);
    feeding.catch(() => {}); // a source failing after the call ended has nobody to tell
    try {
      await Promise.race([feeding, call.result]);
    } catch (err) {
      // What the source threw, or a chunk it should not have yielded, ends the call (aborted if it had started).
      call.fail(toError(err), RX_USER_ABORT);
      throw err;
    }
    const { service, peer } = await call.result;
    return { data: Buffer.concat(reply), service, peer };
  }

  /** Opens a call in streaming form; see ClientCall. */
  openCall(destination: ServiceDestination, options: CallOptions = NO_CALL_OPTIONS): ClientCall {
    const dest = checkServiceDestination(destination);
    if (options !== NO_CALL_OPTIONS) this.checkCallOptions(options);
    const security = this.securityOf(options.security);
    if (this.closed) throw new EndpointClosedError('The client is closed');
    const maxReply = options.maxReplyBytes === undefined ? this.maxReplyBytes
      : checkCount(options.maxReplyBytes, 'options.maxReplyBytes', 0, Infinity)!;
    const call = new ClientCall(this, dest, dest.service, options, maxReply);
    // The service is settled when the call may leave: a probe in flight may still teach a new one.
    this.schedule(call, dest, options.useLearnedService === false ? false : dest.service, false, security);
    return call;
  }

  /** The service a call to `service` at `dest` goes to: what a probe learned, if anything. */
  private serviceFor(dest: Destination, service: number): number {
    if (this.learned.size === 0) return service;
    const learned = this.learned.get(`${destKey(dest)}|${service}`);
    return learned ? learned.service : service;
  }

  /**
   * Probes a destination for an upgrade of `service`: sends `request` with the
   * upgrade flag on a new connection and reports which service answered.
   * Calls to the destination wait until the probe is over.
   */
  async probe(destination: Destination, options: ProbeOptions): Promise<ProbeResult> {
    return this.probeChecked(destination, options, undefined);
  }

  /**
   * @internal probe() whose reply must also pass `check` (it throws on a
   * reply it cannot decode) before the result is learned.
   */
  async probeChecked(destination: Destination, options: ProbeOptions, check: ((reply: Buffer) => void) | undefined): Promise<ProbeResult> {
    const dest = checkDestination(destination);
    checkObject(options, 'options');
    const service = checkService(options.service, 'options.service');
    const upgradeTo = options.upgradeTo === undefined ? undefined : checkService(options.upgradeTo, 'options.upgradeTo');
    checkBytes(options.request, 'options.request');
    checkDuration(options.timeout, 'options.timeout');
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new InvalidArgTypeError('options.signal', 'an AbortSignal', options.signal);
    }
    const security = this.securityOf(options.security);
    if (this.closed) throw new EndpointClosedError('The client is closed');

    const key = destKey(dest);
    // One probe at a time per destination; calls queue behind the gate.
    const previous = this.gates.get(key);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const chained = (previous ?? Promise.resolve()).then(() => gate);
    this.gates.set(key, chained);
    try {
      if (previous) await previous;
      const expect = upgradeTo === undefined ? null : new Set([service, upgradeTo]);
      const result = await this.runProbe(dest, service, options, expect, security);
      if (check && result.reply && result.reply.length > 0) check(result.reply);
      this.learned.set(`${key}|${service}`, result);
      this.emit('probe', { address: dest.address, port: dest.port }, result);
      return result;
    } finally {
      open();
      if (this.gates.get(key) === chained) this.gates.delete(key);
    }
  }

  /** What a probe learned for this destination and service, if anything. */
  learnedService(destination: Destination, service: number): ProbeResult | undefined {
    return this.learned.get(`${destKey(checkDestination(destination))}|${checkService(service)}`);
  }

  /** Forgets probe results: for one destination, or all (no argument). */
  forget(destination?: Destination): void {
    if (destination === undefined) {
      this.learned.clear();
      return;
    }
    const prefix = `${destKey(checkDestination(destination))}|`;
    for (const key of [...this.learned.keys()]) if (key.startsWith(prefix)) this.learned.delete(key);
  }

  /** Closes every socket; calls in progress fail with ERR_SOCKET_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.active.values()) call.fail(new EndpointClosedError());
    for (const lane of this.allLanes()) lane.close();
    this.lanes4.clear();
    this.lanes6.clear();
    this.securedLanes.clear();
    this.keys.close();
    process.nextTick(() => this.emit('close'));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  ref(): this {
    this.refed = true;
    for (const lane of this.allLanes()) lane.raw.ref();
    return this;
  }

  /** Lets the process exit while this client is idle. */
  unref(): this {
    this.refed = false;
    for (const lane of this.allLanes()) lane.raw.unref();
    return this;
  }

  private allLanes(): Endpoint[] {
    return [...this.lanes4.values(), ...this.lanes6.values(), ...this.securedLanes.values()];
  }

  /** @internal a call ended: free its slot */
  release(call: ClientCall): void {
    const key = call.activeKey;
    if (key === undefined) return;
    this.deactivate(call);
    const slots = this.slots.get(key);
    if (slots) this.releaseSlot(key, slots);
  }

  private async runProbe(dest: Destination & { family: 'IPv4' | 'IPv6' }, service: number, options: ProbeOptions,
    expect: ReadonlySet<number> | null, security: CheckedClientSecurity | undefined): Promise<ProbeResult> {
    const call = new ClientCall(this, dest, service, { timeout: options.timeout, signal: options.signal }, this.maxReplyBytes, expect);
    // The probe holds the gate: it starts at once, without waiting for it.
    this.schedule(call, dest, service, true, security);
    const chunks: Buffer[] = [];
    try {
      await call.end(options.request);
      for await (const chunk of call) chunks.push(chunk);
      const { service: answered } = await call.result;
      const upgraded = answered !== service;
      return {
        service: answered,
        upgraded,
        reply: Buffer.concat(chunks),
        summary: upgraded ? `upgraded: service ${service} answered as ${answered}` : `not upgraded: service ${service} answered`,
      };
    } catch (err) {
      if (err instanceof RxAbortError && !err.local) {
        if (err.abortCode === RXGEN_OPCODE || err.abortCode === RX_INVALID_OPERATION) {
          return {
            service, upgraded: false, abortCode: err.abortCode, fallback: 'not-supported',
            summary: `not upgraded: service ${service} does not know the probe request (${err.abortName})`,
          };
        }
        if (err.abortCode === RX_PROTOCOL_ERROR) {
          return {
            service, upgraded: false, abortCode: err.abortCode, fallback: 'protocol-error',
            summary: `probe broken by RX_PROTOCOL_ERROR (the kernel's upgrade defect); using the original service ${service}`,
          };
        }
      }
      throw err;
    }
  }

  /**
   * Runs `call` when the destination's gate (a probe in flight) is open and
   * it has a slot. `service` is the service it was addressed to, looked up in
   * what probes learned when it may leave; `false` sends it there as it is
   * (useLearnedService: false); a probe passes the service it probes.
   */
  private schedule(call: ClientCall, dest: Destination & { family: 'IPv4' | 'IPv6' }, service: number | false, probe: boolean,
    security: CheckedClientSecurity | undefined): void {
    const key = destKey(dest);
    const waitSlot = () => {
      // Looked up when the gate opens: a sweep may have dropped the idle entry meanwhile.
      const s = this.slots.get(key) ?? this.addSlots(key);
      const wait = s.acquire();
      if (!wait) this.begin(call, dest, key, s, service, probe, security);
      else void wait.then(() => this.begin(call, dest, key, s, service, probe, security));
    };
    const gate = probe ? undefined : this.gates.get(key);
    if (gate) void gate.then(waitSlot);
    else waitSlot();
  }

  /** A call has its slot: it leaves now, through the lane of the service it goes to. */
  private begin(call: ClientCall, dest: Destination & { family: 'IPv4' | 'IPv6' }, key: string, slots: Slots,
    asked: number | false, probe: boolean, security: CheckedClientSecurity | undefined): void {
    if (this.closed || call.isSettled) {
      this.releaseSlot(key, slots);
      if (!call.isSettled) call.fail(new EndpointClosedError());
      return;
    }
    call.activeSerial = this.nextSerial++;
    call.activeKey = key;
    this.active.set(call.activeSerial, call);
    const service = asked === false ? call.service : probe ? asked : this.serviceFor(dest, asked);
    let lane: Endpoint;
    try {
      lane = this.lane(dest.family, service, security);
    } catch (err) {
      this.deactivate(call);
      this.releaseSlot(key, slots);
      call.fail(err as Error);
      return;
    }
    call.start(lane, service);
  }

  private addSlots(key: string): Slots {
    const slots = new Slots(this.maxCallsPerPeer);
    this.slots.set(key, slots);
    return slots;
  }

  private deactivate(call: ClientCall): void {
    this.active.delete(call.activeSerial);
    call.activeKey = undefined;
  }

  /**
   * A destination's idle slots stay in the map, so that one call after
   * another to it does not add and delete its key each time (a Map that
   * churns keeps every later value alive through scavenges: see idtable.ts);
   * once the map holds more destinations than slotsSweepAt, the idle ones
   * are swept out and the mark set to twice what is left.
   */
  private releaseSlot(key: string, slots: Slots): void {
    slots.release();
    if (!slots.idle || this.slots.size <= this.slotsSweepAt) return;
    for (const [k, s] of this.slots) if (s.idle) this.slots.delete(k);
    this.slotsSweepAt = Math.max(SLOTS_SWEEP_MIN, 2 * this.slots.size);
  }

  private lane(family: 'IPv4' | 'IPv6', service: number, security: CheckedClientSecurity | undefined): Endpoint {
    if (security) return this.securedLane(family, service, security);
    const lanes = family === 'IPv4' ? this.lanes4 : this.lanes6;
    const key = this.isolate ? service : 0;
    let lane = lanes.get(key);
    if (lane) return lane;
    lane = this.newLane(family, undefined);
    lanes.set(key, lane);
    return lane;
  }

  // The key and level are per socket (set before bind): one lane per (family, service, security).
  private securedLane(family: 'IPv4' | 'IPv6', service: number, security: CheckedClientSecurity): Endpoint {
    const key = `${family}|${this.isolate ? service : 0}|${security.id}`;
    let lane = this.securedLanes.get(key);
    if (lane) return lane;
    lane = this.newLane(family, security);
    this.securedLanes.set(key, lane);
    return lane;
  }

  private newLane(family: 'IPv4' | 'IPv6', security: CheckedClientSecurity | undefined): Endpoint {
    const lane = new Endpoint({ family, binding: this.binding, batch: this.batch });
    lane.on('error', (err) => emitError(this, err));
    if (security) {
      try {
        this.keys.apply(lane.raw, security);
      } catch (err) {
        lane.close();
        throw err;
      }
    }
    if (this.isolate) bindPrivatePort(lane, family);
    if (!this.refed) lane.raw.unref();
    return lane;
  }

  /** A call's security: its own (null: none), else the client's. */
  private securityOf(option: ClientSecurity | null | undefined): CheckedClientSecurity | undefined {
    if (option === undefined) return this.security;
    return option === null ? undefined : checkClientSecurity(option, 'options.security');
  }

  private checkCallOptions(options: CallOptions): void {
    checkObject(options, 'options');
    checkDuration(options.timeout, 'options.timeout');
    checkDeadline(options.deadline, 'options.deadline');
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new InvalidArgTypeError('options.signal', 'an AbortSignal', options.signal);
    }
    checkBoolean(options.exclusive, 'options.exclusive');
    checkBoolean(options.useLearnedService, 'options.useLearnedService');
    const k = options.kernelTimeouts;
    if (k !== undefined) {
      checkObject(k, 'options.kernelTimeouts');
      for (const [name, max, unit] of KERNEL_TIMEOUT_LIMITS) {
        const v = k[name];
        if (v === undefined) continue;
        if (typeof v !== 'number') throw new InvalidArgTypeError(`options.kernelTimeouts.${name}`, 'of type number', v);
        if (!Number.isInteger(v) || v < 0 || v > max) {
          throw new OutOfRangeError(`options.kernelTimeouts.${name}`, `whole ${unit} from 0 to ${max}`, v);
        }
      }
    }
  }
}

/** The iterator of a request given as an (async) iterable; anything else is a TypeError. */
function iteratorOf(request: unknown): AsyncIterator<unknown> | Iterator<unknown> {
  const what = 'a Uint8Array or an (async) iterable of Uint8Array';
  if (typeof request === 'string' || typeof request !== 'object' || request === null) {
    throw new InvalidArgTypeError('request', what, request);
  }
  const r = request as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
  const make = (typeof r[Symbol.asyncIterator] === 'function' ? r[Symbol.asyncIterator] : r[Symbol.iterator]) as
    ((this: unknown) => unknown) | undefined;
  if (typeof make !== 'function') throw new InvalidArgTypeError('request', what, request);
  const it = make.call(request) as AsyncIterator<unknown> | Iterator<unknown>;
  if (typeof it !== 'object' || it === null || typeof it.next !== 'function') {
    throw new InvalidArgTypeError('request', `${what} (its iterator has no next())`, it);
  }
  return it;
}

/**
 * Writes every chunk of `source` to the call, then ends it. Rejects with what
 * the source threw, with a TypeError for a result or chunk of the wrong kind
 * (the source is then told to stop, its return()), or with the call's error
 * when a write fails.
 */
async function feed(call: ClientCall, source: AsyncIterator<unknown> | Iterator<unknown>): Promise<void> {
  for (;;) {
    const step: unknown = await source.next();
    let chunk: unknown;
    try {
      checkObject(step, 'request iterator result', 'an object { value, done }');
      const { done, value } = step as IteratorResult<unknown>; // getters of the source's own object may throw
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new InvalidArgTypeError('request chunk', 'a Uint8Array', value);
      chunk = value;
    } catch (err) {
      void stop(source);
      throw err;
    }
    try {
      await call.write(chunk as Uint8Array);
    } catch (err) {
      void stop(source);
      throw err;
    }
  }
  await call.end();
}

async function stop(source: AsyncIterator<unknown> | Iterator<unknown>): Promise<void> {
  try {
    await source.return?.();
  } catch {
    // The source's own cleanup failed; the call's error is what the caller hears.
  }
}

/**
 * RXRPC_SET_CALL_TIMEOUT takes 1 to 3 words (hard s, idle ms, normal ms).
 * Only words up to the last non-zero one are sent: a trailing 0 is "unset" to
 * the caller, but 6.1 takes a normal timeout of 0 literally and ends the call.
 */
function kernelTimeoutWords(k: KernelTimeouts): [number] | [number, number] | [number, number, number] | undefined {
  const words = [k.hard ?? 0, k.idle ?? 0, k.normal ?? 0];
  while (words.length > 0 && words[words.length - 1] === 0) words.pop();
  return words.length === 0 ? undefined : (words as [number] | [number, number] | [number, number, number]);
}

/**
 * Binds a client endpoint (service 0) to a UDP port of its own, so that its
 * connections are not shared with other sockets. Port 0 would not do: every
 * socket bound to port 0 shares one kernel endpoint.
 */
function bindPrivatePort(lane: Endpoint, family: 'IPv4' | 'IPv6'): void {
  const address = family === 'IPv4' ? '0.0.0.0' : '::';
  for (let attempt = 0; ; attempt++) {
    const port = 49152 + Math.floor(Math.random() * 16384);
    try {
      lane.raw.bind({ service: 0, address, port });
      return;
    } catch (err) {
      if (!(isErrnoError(err) && err.code === 'EADDRINUSE') || attempt >= 50) {
        lane.close();
        throw err;
      }
    }
  }
}
