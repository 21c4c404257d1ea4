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
import { RX_CALL_TIMEOUT, RX_INVALID_OPERATION, RX_PROTOCOL_ERROR, RX_USER_ABORT, RXGEN_OPCODE } from './constants';
import { Call, Endpoint, EndpointClosedError } from './endpoint';
import {
  AbortError, InvalidArgTypeError, isErrnoError, OutOfRangeError, RxAbortError, TimeoutError, WrongServiceError, writeError,
} from './errors';
import { NativeBinding } from './native';
import { CheckedClientSecurity, checkClientSecurity, ClientKeys, ClientSecurity } from './security/options';
import {
  checkDestination, checkDuration, checkService, checkServiceDestination, Destination, ServiceDestination,
} from './services';

export interface KernelTimeouts {
  /** Hard limit on the whole call, in seconds. */
  hard?: number;
  /** Longest silence from the peer, in milliseconds. */
  idle?: number;
  /** Longest wait for an expected packet, in milliseconds. */
  normal?: number;
}

export interface CallOptions {
  /** Milliseconds before the call fails with TimeoutError (and is aborted on the wire with RX_CALL_TIMEOUT). */
  timeout?: number;
  /** Absolute deadline (Date or ms since the epoch); the earlier of timeout and deadline applies. */
  deadline?: Date | number;
  /** Aborts the call (on the wire with RX_USER_ABORT) and rejects with AbortError. */
  signal?: AbortSignal;
  /** Put the call on a connection of its own (RXRPC_EXCLUSIVE_CALL). */
  exclusive?: boolean;
  /** Timeouts enforced by the kernel (RXRPC_SET_CALL_TIMEOUT). */
  kernelTimeouts?: KernelTimeouts;
  /** Send to the service a probe learned for this destination (default true). */
  useLearnedService?: boolean;
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
  /** Messages read per wakeup, per socket. */
  batch?: number;
  /** Security of every call (default: anonymous); a call's own `security` overrides it. */
  security?: ClientSecurity;
  /** The native binding (tests pass a fake). */
  binding?: NativeBinding;
}

interface ClientEvents {
  /** A probe's result, when it was learned. */
  probe: [Destination, ProbeResult];
  error: [Error];
  close: [];
}

const destKey = (d: Destination) => `${d.address}|${d.port}`;

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

/** Chunks of a reply for an async iterator, in order. */
class ChunkQueue implements AsyncIterable<Buffer> {
  private chunks: Buffer[] = [];
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.wake?.();
  }
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.ended) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/**
 * A client call in its streaming form: write the request in parts, read the
 * reply as an async iterable, and `result` settles with who answered.
 */
export class ClientCall implements AsyncIterable<Buffer> {
  /** Settles when the call ends: the service and peer that answered, or why it failed. */
  readonly result: Promise<{ service: number; peer: Destination }>;
  private readonly reply = new ChunkQueue();
  private gathered: Buffer[] | undefined;
  private call: Call | undefined;
  private pending: Buffer[] = [];
  private ended = false;
  private failed: Error | undefined;
  private settle!: (error?: Error) => void;
  private cleanup: Array<() => void> = [];
  private writeWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  private lane: Endpoint | undefined;
  private serviceId: number;

  /** @internal */
  constructor(
    private readonly client: Client,
    private readonly target: Destination & { family: 'IPv4' | 'IPv6' },
    service: number,
    private readonly options: CallOptions,
    /** Services whose reply a probe accepts; null accepts any. Normal calls accept only their own. */
    private readonly probeExpect: ReadonlySet<number> | null | undefined = undefined,
  ) {
    this.serviceId = service;
    this.result = new Promise((resolve, reject) => {
      this.settle = (error) => {
        if (error) reject(error);
        else resolve({ service: this.call!.service, peer: { address: target.address, port: target.port } });
      };
    });
    this.result.catch(() => {}); // failures also reach the reply iterator and write()
    this.watch();
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

  /** Writes part of the request; resolves when the kernel has taken it. */
  write(chunk: Uint8Array): Promise<void> {
    return this.push(chunk, false);
  }

  /** Writes the last part of the request (or none). */
  end(chunk?: Uint8Array): Promise<void> {
    return this.push(chunk ?? Buffer.alloc(0), true);
  }

  /** Aborts the call on the wire with `code` (RX_USER_ABORT by default). */
  abort(code = RX_USER_ABORT): void {
    this.fail(new RxAbortError(code, true), code);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.gathered) throw new Error('the reply of this call is gathered by Client.call');
    return this.reply[Symbol.asyncIterator]();
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
    this.pending.push(Buffer.from(request.buffer, request.byteOffset, request.length));
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
    // Not started yet: held until the call may leave, then sent as its first data.
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    const written = new Promise<void>((resolve, reject) => this.writeWaiters.push({ resolve, reject }));
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
    if (this.pending.length > 0 || this.ended) this.begin();
  }

  private begin(): void {
    const endpoint = this.lane!;
    const first = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    const k = this.options.kernelTimeouts;
    let call: Call;
    try {
      call = endpoint.startCall({ ...this.target, service: this.serviceId }, first, !this.ended, {
        upgrade: this.upgrade,
        exclusive: this.options.exclusive || this.upgrade,
        kernelTimeouts: k ? kernelTimeoutWords(k) : undefined,
      });
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.call = call;
    call.ondata = (chunk) => {
      if (!this.accepts(call.service)) {
        this.fail(new WrongServiceError(this.serviceId, call.service, chunk), RX_PROTOCOL_ERROR);
        return;
      }
      if (chunk.length === 0) return;
      if (this.gathered) this.gathered.push(chunk);
      else this.reply.push(chunk);
    };
    call.ondone = (error) => {
      if (error) this.fail(error);
      else this.succeed();
    };
    const waiters = this.writeWaiters.splice(0);
    if (waiters.length === 0) return;
    void call.drained().then(() => {
      for (const w of waiters) (this.failed ? w.reject(this.failed) : w.resolve());
    });
  }

  /** @internal */
  fail(error: Error, abortCode?: number): void {
    if (this.failed || this.settled) return;
    this.failed = error;
    if (this.call && abortCode !== undefined) this.call.abort(abortCode, error);
    for (const w of this.writeWaiters.splice(0)) w.reject(error);
    this.finish(error);
  }

  private settled = false;

  /** True once the call has succeeded or failed. */
  get isSettled(): boolean {
    return this.settled;
  }

  private succeed(): void {
    if (this.settled) return;
    this.finish();
  }

  private finish(error?: Error): void {
    this.settled = true;
    for (const c of this.cleanup.splice(0)) c();
    this.reply.end(error);
    if (error) this.settle(error);
    else this.settle();
    this.client.release(this);
  }

  private watch(): void {
    const { signal } = this.options;
    if (signal) {
      const onAbort = () => this.fail(new AbortError(undefined, { cause: signal.reason }), RX_USER_ABORT);
      if (signal.aborted) {
        onAbort();
        return;
      } else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.cleanup.push(() => signal.removeEventListener('abort', onAbort));
      }
    }
    let ms = this.options.timeout;
    if (this.options.deadline !== undefined) {
      const until = (this.options.deadline instanceof Date ? this.options.deadline.getTime() : this.options.deadline) - Date.now();
      ms = Math.max(0, ms === undefined ? until : Math.min(ms, until));
    }
    if (ms !== undefined) {
      const limit = ms;
      if (limit <= 0) {
        this.fail(new TimeoutError(limit));
        return;
      }
      const timer = setTimeout(() => this.fail(new TimeoutError(limit), RX_CALL_TIMEOUT), limit);
      this.cleanup.push(() => clearTimeout(timer));
    }
  }
}

export class Client extends EventEmitter<ClientEvents> {
  private readonly lanes = new Map<string, Endpoint>();
  private readonly slots = new Map<string, Slots>();
  private readonly gates = new Map<string, Promise<void>>();
  private readonly learned = new Map<string, ProbeResult>();
  private readonly maxCallsPerPeer: number;
  private readonly isolate: boolean;
  private readonly binding: NativeBinding | undefined;
  private readonly batch: number | undefined;
  private readonly active = new Map<ClientCall, string>();
  private readonly security: CheckedClientSecurity | undefined;
  private readonly keys: ClientKeys;
  private closed = false;
  private refed = true;

  constructor(options: ClientOptions = {}) {
    super();
    const max = options.maxCallsPerPeer ?? 8;
    if (typeof max !== 'number') throw new InvalidArgTypeError('maxCallsPerPeer', 'of type number', max);
    if (!Number.isInteger(max) || max < 1) throw new OutOfRangeError('maxCallsPerPeer', 'an integer of at least 1', max);
    this.maxCallsPerPeer = max;
    this.isolate = options.isolateServices ?? true;
    this.binding = options.binding;
    this.batch = options.batch;
    this.security = options.security === undefined ? undefined : checkClientSecurity(options.security, 'options.security');
    this.keys = new ClientKeys(options.binding);
  }

  /** Makes a call and resolves with the whole reply. */
  async call(destination: ServiceDestination, request: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    options: CallOptions = {}): Promise<CallResult> {
    const call = this.openCall(destination, options);
    if (request instanceof Uint8Array) {
      // The common case, without the stream machinery: the reply is gathered
      // as it arrives, and a failed write is the call's failure, in `result`.
      const reply = call.gather();
      call.sendAll(request);
      const { service, peer } = await call.result;
      // A copy: the chunks are views of a whole receive batch, which must not stay pinned.
      return { data: Buffer.concat(reply), service, peer };
    }
    const chunks: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of call) chunks.push(chunk);
    })();
    reading.catch(() => {});
    try {
      if (request && (Symbol.asyncIterator in Object(request) || Symbol.iterator in Object(request))) {
        for await (const chunk of request as AsyncIterable<Uint8Array>) await call.write(chunk);
        await call.end();
      } else {
        throw new InvalidArgTypeError('request', 'a Uint8Array or an (async) iterable of Uint8Array', request);
      }
    } catch (err) {
      if (!(err instanceof InvalidArgTypeError)) {
        await call.result; // the call's own failure explains a failed write best
      }
      call.abort();
      throw err;
    }
    const { service, peer } = await call.result;
    await reading;
    return { data: Buffer.concat(chunks), service, peer };
  }

  /** Opens a call in streaming form; see ClientCall. */
  openCall(destination: ServiceDestination, options: CallOptions = {}): ClientCall {
    const dest = checkServiceDestination(destination);
    this.checkCallOptions(options);
    const security = this.securityOf(options.security);
    if (this.closed) throw new EndpointClosedError();
    const call = new ClientCall(this, dest, dest.service, options);
    // The service is settled when the call may leave: a probe in flight may still teach a new one.
    this.schedule(call, dest, () => {
      const learned = options.useLearnedService === false ? undefined : this.learned.get(`${destKey(dest)}|${dest.service}`);
      return learned ? learned.service : dest.service;
    }, false, security);
    return call;
  }

  /**
   * Probes a destination for an upgrade of `service`: sends `request` with the
   * upgrade flag on a new connection and reports which service answered.
   * Calls to the destination wait until the probe is over.
   */
  async probe(destination: Destination, options: ProbeOptions): Promise<ProbeResult> {
    const dest = checkDestination(destination);
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'an object', options);
    const service = checkService(options.service, 'options.service');
    const upgradeTo = options.upgradeTo === undefined ? undefined : checkService(options.upgradeTo, 'options.upgradeTo');
    if (!(options.request instanceof Uint8Array)) {
      throw new InvalidArgTypeError('options.request', 'a Uint8Array', options.request);
    }
    checkDuration(options.timeout, 'options.timeout');
    const security = this.securityOf(options.security);
    if (this.closed) throw new EndpointClosedError();

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

  /** Forgets probe results: for one destination, or all. */
  forget(destination?: Destination): void {
    if (!destination) {
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
    for (const call of [...this.active.keys()]) call.fail(new EndpointClosedError());
    for (const lane of this.lanes.values()) lane.close();
    this.lanes.clear();
    this.keys.close();
    process.nextTick(() => this.emit('close'));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  ref(): this {
    this.refed = true;
    for (const lane of this.lanes.values()) lane.raw.ref();
    return this;
  }

  /** Lets the process exit while this client is idle. */
  unref(): this {
    this.refed = false;
    for (const lane of this.lanes.values()) lane.raw.unref();
    return this;
  }

  /** @internal a call ended: free its slot */
  release(call: ClientCall): void {
    const key = this.active.get(call);
    if (key === undefined) return;
    this.active.delete(call);
    const slots = this.slots.get(key);
    if (slots) {
      slots.release();
      if (slots.idle) this.slots.delete(key);
    }
  }

  private async runProbe(dest: Destination & { family: 'IPv4' | 'IPv6' }, service: number, options: ProbeOptions,
    expect: ReadonlySet<number> | null, security: CheckedClientSecurity | undefined): Promise<ProbeResult> {
    const call = new ClientCall(this, dest, service, { timeout: options.timeout, signal: options.signal }, expect);
    // The probe holds the gate: it starts at once, without waiting for it.
    this.schedule(call, dest, () => service, true, security);
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

  private schedule(call: ClientCall, dest: Destination & { family: 'IPv4' | 'IPv6' }, resolveService: () => number, probe: boolean,
    security: CheckedClientSecurity | undefined): void {
    const key = destKey(dest);
    let slots = this.slots.get(key);
    if (!slots) this.slots.set(key, (slots = new Slots(this.maxCallsPerPeer)));
    const s = slots;
    const begin = () => {
      if (this.closed || call.isSettled) {
        s.release();
        if (!call.isSettled) call.fail(new EndpointClosedError());
        return;
      }
      this.active.set(call, key);
      const service = resolveService();
      let lane: Endpoint;
      try {
        lane = this.lane(dest.family, service, security);
      } catch (err) {
        this.active.delete(call);
        s.release();
        call.fail(err as Error);
        return;
      }
      call.start(lane, service);
    };
    const gate = probe ? undefined : this.gates.get(key);
    const waitSlot = () => {
      const wait = s.acquire();
      if (!wait) {
        begin();
        return;
      }
      void wait.then(begin);
    };
    if (gate) void gate.then(waitSlot);
    else waitSlot();
  }

  // The key and level are per socket (set before bind): one lane per security as well.
  private lane(family: 'IPv4' | 'IPv6', service: number, security: CheckedClientSecurity | undefined): Endpoint {
    const key = `${this.isolate ? `${family}|${service}` : family}|${security?.id ?? ''}`;
    let lane = this.lanes.get(key);
    if (lane) return lane;
    lane = new Endpoint({ family, binding: this.binding, batch: this.batch });
    lane.on('error', (err) => this.emit('error', err));
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
    this.lanes.set(key, lane);
    return lane;
  }

  /** A call's security: its own (null: none), else the client's. */
  private securityOf(option: ClientSecurity | null | undefined): CheckedClientSecurity | undefined {
    if (option === undefined) return this.security;
    return option === null ? undefined : checkClientSecurity(option, 'options.security');
  }

  private checkCallOptions(options: CallOptions): void {
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'an object', options);
    checkDuration(options.timeout, 'options.timeout');
    if (options.deadline !== undefined && !(options.deadline instanceof Date) && typeof options.deadline !== 'number') {
      throw new InvalidArgTypeError('options.deadline', 'a Date or a number of ms since the epoch', options.deadline);
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new InvalidArgTypeError('options.signal', 'an AbortSignal', options.signal);
    }
    const k = options.kernelTimeouts;
    if (k !== undefined) {
      if (typeof k !== 'object' || k === null) throw new InvalidArgTypeError('options.kernelTimeouts', 'an object', k);
      if (k.hard !== undefined && (!Number.isInteger(k.hard) || k.hard < 0 || k.hard > 0x7fffffff / 1000)) {
        throw new OutOfRangeError('options.kernelTimeouts.hard', 'whole seconds from 0 to 2147483', k.hard);
      }
      for (const name of ['idle', 'normal'] as const) {
        const v = k[name];
        if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 3600000)) {
          throw new OutOfRangeError(`options.kernelTimeouts.${name}`, 'whole milliseconds from 0 to 3600000', v);
        }
      }
    }
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
