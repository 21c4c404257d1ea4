/**
 * Server: one or two services on one transport address, optionally with the
 * kernel's service upgrade between them, and a handler per call.
 *
 * The request is read as soon as it arrives, whatever the handler does (the
 * 6.1 kernel aborts a call whose request is not read within about a second);
 * a reply written before the request has been read in full waits for it (6.1
 * refuses such sends with EPROTO). The accept pool is kept charged.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { RX_CALL_DEAD, RX_USER_ABORT, RXGEN_SS_UNMARSHAL } from './constants';
import { Call, Endpoint } from './endpoint';
import {
  bytesError, checkAbortCode, checkObject, emitError, InvalidArgTypeError, InvalidArgValueError, MalformedError,
  OutOfRangeError, RxAbortError, show, SizeLimitError, toError, writeError,
} from './errors';
import { NativeBinding } from './native';
import { ChunkQueue } from './queue';
import { Keyring } from './security/keyring';
import {
  applyServerSecurity, CheckedServerSecurity, checkServerSecurity, isSecurityAbortCode, minimumLevelWarning, ServerSecurity,
} from './security/options';
import {
  checkAddress, checkCount, checkDuration, checkPort, checkService, checkServicePair, Destination, ServicePair,
} from './services';
import { fixedModuleVersion, kernelSeries } from './kernel';

export { fixedModuleVersion };
import { after } from './timers';
import { IdTable } from './idtable';

const EMPTY = Buffer.alloc(0);

/** Default limit on a request's size (ServerOptions.maxRequestBytes). */
export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export interface ServerOptions {
  /** Local IPv4 or IPv6 address to serve on. */
  address: string;
  /** UDP port (not 0: the kernel cannot tell which port it chose). */
  port: number;
  /** One service ID, or two served on the same address. */
  services: number | readonly [number] | readonly [number, number];
  /** Upgrade calls to `from` that ask for it to `to` (both must be the two services). */
  upgrade?: ServicePair;
  /** Accept charges kept in the pool. Default: net.rxrpc.max_backlog (10 unless raised; 31 at most). */
  backlog?: number;
  /**
   * Largest request accepted, in bytes (default 4 MiB; Infinity for no
   * limit). Requests are read as they arrive whatever the handler does (Linux
   * 6.1 aborts a call whose request is not read), so this is what bounds the
   * memory a caller can make the server hold. A larger request is aborted with
   * RXGEN_SS_UNMARSHAL and the handler's request() rejects with SizeLimitError.
   */
  maxRequestBytes?: number;
  /** Messages read per wakeup (1 to 1024, default 64). */
  batch?: number;
  /** Server keys (or a keyring of them) for secured calls, and a minimum level. */
  security?: ServerSecurity;
  /** @internal The native binding (tests pass a fake). */
  binding?: NativeBinding;
}

function consumedError(how: string): Error {
  return Object.assign(new Error(`the request of this call is already being read by ${how}`), {
    code: 'ERR_RXRPC_REQUEST_CONSUMED',
  });
}

/** What a handler gets for each call. */
export class IncomingCall implements AsyncIterable<Buffer> {
  private controller: AbortController | undefined; // made when `signal` is first read
  private readonly requestQueue = new ChunkQueue();
  private reading: 'request' | 'iterator' | undefined;
  private received = false;
  private replyEnded = false;
  // Made when a reply is written before the request is complete.
  private held: Array<{ data: Uint8Array; more: boolean }> | undefined;
  private afterRequest: Array<() => void> | undefined;
  private error: Error | undefined; // the error that ended the call
  private done = false;
  private finishedPromise: Promise<Error | undefined> | undefined; // made when first asked for
  private resolveFinished: ((e: Error | undefined) => void) | undefined;

  /** @internal */
  constructor(private readonly call: Call, private readonly maxRequestBytes: number,
    /** @internal told when the call has ended */
    private readonly onfinish?: (call: IncomingCall, error: Error | undefined) => void) {
    call.owner = this;
  }

  /** @internal settles with the error that ended the call (undefined for a clean end) once it has ended */
  get finished(): Promise<Error | undefined> {
    if (!this.finishedPromise) {
      this.finishedPromise = this.done ? Promise.resolve(this.error)
        : new Promise((resolve) => (this.resolveFinished = resolve));
    }
    return this.finishedPromise;
  }

  /** Aborted when the call ends before the handler is done (peer abort, server close). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.error) this.controller.abort(this.error);
    }
    return this.controller.signal;
  }

  /** The service the call was made to (after any upgrade the kernel applied). */
  get service(): number {
    return this.call.service;
  }

  get peer(): Destination {
    return this.call.peer;
  }

  /** The kernel's call id on this socket, for logs. */
  get id(): number {
    return this.call.id;
  }

  /** True once the whole request has arrived. */
  get requestComplete(): boolean {
    return this.received;
  }

  /**
   * The whole request. Every call returns the same promise; it rejects if the
   * call ends before the request is complete (or it is larger than
   * maxRequestBytes). Not together with the async iterator.
   */
  request(): Promise<Buffer> {
    if (this.reading === 'iterator') return Promise.reject(consumedError('its async iterator'));
    this.reading = 'request';
    return this.requestQueue.concatenated(); // the same promise every time
  }

  /** The request as it arrives (it is read eagerly and held until consumed). Not together with request(). */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.reading === 'request') throw consumedError('request()');
    this.reading = 'iterator';
    return this.requestQueue;
  }

  /** Writes part of the reply; resolves when the kernel has taken it. The bytes are the call's once this returns. */
  write(chunk: Uint8Array): Promise<void> {
    return this.send(chunk, true);
  }

  /** Writes the last part of the reply (or none). */
  end(chunk?: Uint8Array): Promise<void> {
    return this.send(chunk ?? Buffer.alloc(0), false);
  }

  /** Aborts the call with `code`; a code the kernel cannot send throws a RangeError and changes nothing. */
  abort(code: number = RX_USER_ABORT): void {
    this.call.abort(code);
  }

  /** @internal */
  get replied(): boolean {
    return this.replyEnded;
  }

  /** @internal the call has ended */
  get isDone(): boolean {
    return this.call.isDone;
  }

  /** @internal the error that ended the call, once it has ended with one */
  get endError(): Error | undefined {
    return this.error;
  }

  /**
   * @internal the reply a handler returned: end(reply) without the promise
   * (a failure is the call's, reported where the call ends).
   */
  endWith(reply: Uint8Array | undefined): void {
    if (this.error || this.replyEnded || !this.received) {
      this.end(reply).catch(() => {});
      return;
    }
    this.replyEnded = true;
    this.call.write(reply ?? EMPTY, false);
  }

  private send(chunk: Uint8Array, more: boolean): Promise<void> {
    const refused = writeError(chunk, this.error, this.replyEnded);
    if (refused) return Promise.reject(refused);
    if (!more) this.replyEnded = true;
    if (!this.received) {
      // Held (a copy) until the request is complete: Linux 6.1 refuses a reply before that.
      (this.held ??= []).push({ data: Buffer.from(chunk), more });
      return new Promise((resolve, reject) => {
        void this.finished.then((e) => (e ? reject(e) : resolve()));
        (this.afterRequest ??= []).push(() => void this.call.drained().then(resolve));
      });
    }
    this.call.write(chunk, more);
    return this.call.drained().then(() => {
      if (this.error) throw this.error;
    });
  }

  /** @internal the call's data (CallOwner) */
  callData(chunk: Buffer, end: boolean): void {
    if (chunk.length > 0) {
      if (this.requestQueue.bytes + chunk.length > this.maxRequestBytes) {
        const error = new SizeLimitError('request', this.maxRequestBytes, this.requestQueue.bytes + chunk.length);
        this.requestQueue.end(error);
        this.call.abort(RXGEN_SS_UNMARSHAL, error);
        return;
      }
      this.requestQueue.push(chunk);
    }
    if (end) {
      this.received = true;
      this.requestQueue.end();
      const held = this.held;
      const after = this.afterRequest;
      this.held = undefined;
      this.afterRequest = undefined;
      if (held) for (const h of held) this.call.write(h.data, h.more);
      if (after) for (const f of after) f();
    }
  }

  /** @internal the call has ended (CallOwner) */
  callDone(error: Error | undefined): void {
    if (!error && !this.replyEnded) error = new Error('call completed before the reply was written');
    this.error = error;
    if (error) {
      this.requestQueue.end(error);
      this.controller?.abort(error);
    }
    this.held = undefined;
    this.done = true;
    this.resolveFinished?.(error);
    this.onfinish?.(this, error);
  }
}

export type Handler = (call: IncomingCall) => Uint8Array | void | Promise<Uint8Array | void>;

interface ServerEvents {
  /**
   * A handler failed: it threw, returned something that is not a reply, or
   * returned a reply after ending one. `code` is the abort code the call was
   * aborted with, or undefined when the call was left as it was.
   */
  handlerError: [Error, IncomingCall, number | undefined];
  /** A warning about this kernel or configuration. */
  warning: [Error];
  /** The kernel refused a caller's security (bad, expired or unknown ticket): the call ended with this abort. */
  securityError: [RxAbortError, IncomingCall];
  error: [Error];
  close: [];
}

/**
 * Why server-side upgrade is not to be relied on with this kernel, or
 * undefined: Linux 6.1 to 7.3 were measured to break it (see README, Kernel
 * support), unless the running rxrpc module is the fixed one.
 */
export function upgradeWarning(kernelRelease = release(), fixed: string | undefined = fixedModuleVersion()): string | undefined {
  if (typeof kernelRelease !== 'string') throw new InvalidArgTypeError('kernelRelease', 'of type string', kernelRelease);
  if (fixed !== undefined && typeof fixed !== 'string') throw new InvalidArgTypeError('fixed', 'a string or undefined', fixed);
  if (fixed !== undefined) return undefined;
  const series = kernelSeries(kernelRelease);
  if (series !== undefined && series <= 7003) {
    return `kernel ${kernelRelease}: server-side service upgrade was measured broken on Linux 6.1 to 7.3 ` +
      '(probes are aborted with RX_PROTOCOL_ERROR or answered on the original service); ' +
      'the fixed rxrpc module (kernel/ in the rxrpc package sources) repairs it';
  }
  return undefined;
}

/** The kernel's limit on accept charges per socket (net.rxrpc.max_backlog). */
export function maxBacklog(): number {
  try {
    return Number(readFileSync('/proc/sys/net/rxrpc/max_backlog', 'utf8')) || 10;
  } catch {
    return 10;
  }
}

export class Server extends EventEmitter<ServerEvents> {
  readonly address: string;
  readonly port: number;
  readonly services: readonly number[];
  readonly upgrade: ServicePair | undefined;
  private readonly endpoint: Endpoint;
  /** Calls in progress, by their endpoint call ID (an IdTable, not a Set: see idtable.ts). */
  private readonly calls = new IdTable<IncomingCall>();
  private readonly maxRequestBytes: number;
  private readonly keyring: Keyring | undefined;
  private handler: Handler;
  private listening = false;
  private closing: Promise<void> | undefined;

  constructor(options: ServerOptions, handler: Handler) {
    super();
    checkObject(options, 'options');
    if (typeof handler !== 'function') throw new InvalidArgTypeError('handler', 'a function', handler);
    const family = checkAddress(options.address, 'options.address');
    const port = checkPort(options.port, 'options.port');
    const given: unknown = options.services;
    if (typeof given !== 'number' && !Array.isArray(given)) {
      throw new InvalidArgTypeError('options.services', 'a service ID or an array of one or two', given);
    }
    const list: unknown[] = typeof given === 'number' ? [given] : given;
    if (list.length < 1 || list.length > 2) {
      throw new InvalidArgValueError('options.services', 'must be one service ID or two', given);
    }
    // Array.from visits the holes of a sparse array, which map() would skip unchecked.
    const services = Array.from(list, (s, i) => checkService(s, `options.services[${i}]`));
    if (services.length === 2 && services[0] === services[1]) {
      throw new InvalidArgValueError('options.services', 'must name two different service IDs', options.services);
    }
    let upgrade: ServicePair | undefined;
    if (options.upgrade !== undefined) {
      upgrade = checkServicePair(options.upgrade, 'options.upgrade');
      if (services.length !== 2 || !services.includes(upgrade.from) || !services.includes(upgrade.to)) {
        throw new InvalidArgValueError('options.upgrade', `must name the two bound services (${services.join(', ')})`, options.upgrade);
      }
    }
    const limit = maxBacklog();
    const backlog = options.backlog === undefined ? limit : options.backlog;
    if (typeof backlog !== 'number') throw new InvalidArgTypeError('options.backlog', 'of type number', backlog);
    if (!Number.isInteger(backlog) || backlog < 1 || backlog > limit) {
      throw new OutOfRangeError('options.backlog', `an integer from 1 to net.rxrpc.max_backlog (${limit})`, backlog);
    }
    this.maxRequestBytes = checkCount(options.maxRequestBytes, 'options.maxRequestBytes', 0, Infinity) ?? DEFAULT_MAX_REQUEST_BYTES;
    const batch = checkCount(options.batch, 'options.batch', 1, 1024);
    if (options.binding !== undefined && (typeof options.binding !== 'object' || options.binding === null)) {
      throw new InvalidArgTypeError('options.binding', 'a native binding', options.binding);
    }
    const security: CheckedServerSecurity | undefined =
      options.security === undefined ? undefined : checkServerSecurity(options.security, services, 'options.security');
    this.address = options.address;
    this.port = port;
    this.services = services;
    this.upgrade = upgrade;
    this.handler = handler;
    this.endpoint = new Endpoint({ family, binding: options.binding, batch });
    this.endpoint.on('error', (err) => emitError(this, err));
    this.endpoint.on('call', (call) => this.onCall(call));
    try {
      // The keyring and level are only taken before bind.
      if (security) this.keyring = applyServerSecurity(this.endpoint.raw, security, options.binding);
      for (const service of services) this.endpoint.raw.bind({ service, address: this.address, port });
      if (upgrade) this.endpoint.raw.setUpgradeableService(upgrade.from, upgrade.to);
      this.endpoint.listen(backlog);
    } catch (err) {
      this.endpoint.close();
      this.keyring?.close();
      throw err;
    }
    this.listening = true;
    const warning = upgrade ? upgradeWarning() : undefined;
    if (warning) {
      const w = new Error(warning) as Error & { code: string };
      w.name = 'RxrpcWarning';
      w.code = 'RXRPC_UPGRADE_UNRELIABLE';
      process.nextTick(() => this.emit('warning', w));
    }
    const levelWarning = minimumLevelWarning(security?.level, release());
    if (levelWarning) {
      const w = Object.assign(new Error(levelWarning), { name: 'RxrpcWarning', code: 'RXRPC_MIN_LEVEL_NOT_ENFORCED' });
      process.nextTick(() => this.emit('warning', w));
    }
  }

  /** Calls being handled. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /**
   * Stops taking calls (new ones are aborted with RX_CALL_DEAD), lets those in
   * progress finish for up to `timeout` ms (default 5000; Infinity waits for
   * them all), aborts the rest with RX_CALL_DEAD, and closes the socket.
   * Bad options reject; every call returns the same promise.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.closing) return this.closing;
    let timeout: number;
    try {
      checkObject(options, 'options');
      timeout = checkDuration(options.timeout, 'options.timeout') ?? 5000;
    } catch (err) {
      return Promise.reject(err);
    }
    this.closing = (async () => {
      // listen(0) would stop the kernel taking calls, but it also kills calls
      // in progress (measured on 6.1: callers see RX_CALL_DEAD). Instead the
      // pool is no longer recharged and calls arriving now are turned away.
      this.endpoint.stopAccepting();
      this.listening = false;
      if (this.calls.size > 0) {
        let cancel = () => {};
        await Promise.race([
          Promise.all(this.calls.values().map((c) => c.finished)),
          new Promise<void>((resolve) => {
            if (timeout !== Infinity) cancel = after(timeout, resolve);
          }),
        ]);
        cancel();
        for (const call of this.calls.values()) if (!call.isDone) call.abort(RX_CALL_DEAD);
      }
      this.endpoint.close();
      this.keyring?.close();
      this.emit('close');
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  ref(): this {
    this.endpoint.raw.ref();
    return this;
  }

  unref(): this {
    this.endpoint.raw.unref();
    return this;
  }

  private readonly forgetCall = (call: IncomingCall, error: Error | undefined): void => {
    this.calls.delete(call.id);
    if (error instanceof RxAbortError && !error.local && isSecurityAbortCode(error.abortCode)) {
      this.emit('securityError', error, call);
    }
  };

  private onCall(call: Call): void {
    if (!this.listening) {
      call.abort(RX_CALL_DEAD);
      return;
    }
    const incoming = new IncomingCall(call, this.maxRequestBytes, this.forgetCall);
    this.calls.set(call.id, incoming);
    let result: ReturnType<Handler>;
    try {
      result = this.handler(incoming);
    } catch (err) {
      this.fail(incoming, err);
      return;
    }
    Promise.resolve(result).then(
      (reply) => {
        const refused = reply === undefined ? undefined : bytesError(reply, 'handler result', 'a Uint8Array or undefined');
        if (refused) {
          // Never a silent empty reply for a value that was meant as one.
          this.fail(incoming, refused);
          return;
        }
        if (incoming.replied) {
          if (reply !== undefined) {
            const err = Object.assign(new Error(`the handler returned ${reply.length} bytes after it had ended its reply; ` +
              'they were not sent'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
            emitHandlerError(this, err, incoming, undefined);
          }
          return;
        }
        if (call.isDone) return;
        // A returned body is the reply; returning nothing ends it empty.
        incoming.endWith(reply as Uint8Array | undefined);
      },
      (err) => this.fail(incoming, err),
    );
  }

  private fail(call: IncomingCall, err: unknown): void {
    // The handler gave up with the very error that ended its call (the peer's
    // abort, a network error, the server closing): that is the call's end,
    // which the handler was told of, not a fault of the handler's.
    if (err !== undefined && err === call.endError) return;
    let error = toError(err);
    let code = err instanceof RxAbortError ? err.abortCode : err instanceof MalformedError ? RXGEN_SS_UNMARSHAL : RX_USER_ABORT;
    let report = !(err instanceof RxAbortError);
    try {
      checkAbortCode(code, 'abortCode');
    } catch (bad) {
      // An RxAbortError whose code cannot go on the wire: the call still ends.
      error = new OutOfRangeError('abortCode', `an abort code the kernel can send (not 0, 32 bits); ` +
        `the handler threw an RxAbortError with ${show((err as RxAbortError).abortCode)}, so RX_USER_ABORT was sent instead`,
      (err as RxAbortError).abortCode);
      void bad;
      code = RX_USER_ABORT;
      report = true;
    }
    if (!call.isDone) call.abort(code);
    if (report) emitHandlerError(this, error, call, code);
  }
}

/** 'handlerError' where someone listens for it; a process warning otherwise. */
function emitHandlerError(server: Server, error: Error, call: IncomingCall, code: number | undefined): void {
  if (server.listenerCount('handlerError') > 0) server.emit('handlerError', error, call, code);
  else process.emitWarning(error);
}
