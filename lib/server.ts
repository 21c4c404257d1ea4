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
import { InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError, RxAbortError, writeError } from './errors';
import { NativeBinding } from './native';
import { Keyring } from './security/keyring';
import {
  applyServerSecurity, CheckedServerSecurity, checkServerSecurity, isSecurityAbortCode, minimumLevelWarning, ServerSecurity,
} from './security/options';
import { checkAddress, checkDuration, checkPort, checkService, checkServicePair, Destination, ServicePair } from './services';

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
  /** Largest request accepted, in bytes; a larger one is aborted with RXGEN_SS_UNMARSHAL. Default unlimited. */
  maxRequestBytes?: number;
  /** Messages read per wakeup. */
  batch?: number;
  /** Server keys (or a keyring of them) for secured calls, and a minimum level. */
  security?: ServerSecurity;
  binding?: NativeBinding;
}

/** What a handler gets for each call. */
export class IncomingCall implements AsyncIterable<Buffer> {
  private controller: AbortController | undefined; // made when `signal` is first read
  private readonly chunks: Buffer[] = [];
  private received = false;
  private bytes = 0;
  private wake: (() => void) | undefined;
  private replyEnded = false;
  private held: Array<{ data: Uint8Array; more: boolean }> = [];
  private error: Error | undefined;
  private failure: Error | undefined; // the error that ended the call, for `signal`
  /** @internal */ readonly finished: Promise<Error | undefined>;
  private resolveFinished!: (e: Error | undefined) => void;

  /** @internal */
  constructor(private readonly call: Call, private readonly maxRequestBytes: number) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    call.ondata = (chunk, end) => this.onData(chunk, end);
    call.ondone = (error) => this.onDone(error);
  }

  /** Aborted when the call ends before the handler is done (peer abort, server close). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.failure) this.controller.abort(this.failure);
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

  /** The whole request. */
  async request(): Promise<Buffer> {
    // The iterator's loop, without a generator per call.
    const parts: Buffer[] = [];
    for (;;) {
      for (const chunk of this.chunks.splice(0)) parts.push(chunk);
      if (this.error) throw this.error;
      if (this.received) return Buffer.concat(parts);
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** The request as it arrives (it is read eagerly and held until consumed). */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.error) throw this.error;
      if (this.received) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** Writes part of the reply; resolves when the kernel has taken it. */
  write(chunk: Uint8Array): Promise<void> {
    return this.send(chunk, true);
  }

  /** Writes the last part of the reply (or none). */
  end(chunk?: Uint8Array): Promise<void> {
    return this.send(chunk ?? Buffer.alloc(0), false);
  }

  /** Aborts the call with `code`. */
  abort(code = RX_USER_ABORT): void {
    this.call.abort(code);
  }

  /** @internal */
  get replied(): boolean {
    return this.replyEnded;
  }

  private send(chunk: Uint8Array, more: boolean): Promise<void> {
    const refused = writeError(chunk, this.error, this.replyEnded);
    if (refused) return Promise.reject(refused);
    if (!more) this.replyEnded = true;
    if (!this.received) {
      this.held.push({ data: chunk, more });
      return new Promise((resolve, reject) => {
        void this.finished.then((e) => (e ? reject(e) : resolve()));
        const check = () => (this.received ? this.call.drained().then(resolve) : undefined);
        this.afterRequest.push(check);
      });
    }
    this.call.write(chunk, more);
    return this.call.drained().then(() => {
      if (this.error) throw this.error;
    });
  }

  private afterRequest: Array<() => void> = [];

  private onData(chunk: Buffer, end: boolean): void {
    if (chunk.length > 0) {
      this.bytes += chunk.length;
      if (this.bytes > this.maxRequestBytes) {
        this.call.abort(RXGEN_SS_UNMARSHAL, new OutOfRangeError('request', `at most ${this.maxRequestBytes} bytes`, this.bytes));
        return;
      }
      this.chunks.push(chunk);
    }
    if (end) {
      this.received = true;
      for (const h of this.held.splice(0)) this.call.write(h.data, h.more);
      for (const f of this.afterRequest.splice(0)) f();
    }
    this.wake?.();
  }

  private onDone(error: Error | undefined): void {
    if (error) {
      this.error = error;
      this.failure = error;
      this.controller?.abort(error);
    } else if (!this.replyEnded) {
      this.error = new Error('call completed before the reply was written');
    }
    this.wake?.();
    this.resolveFinished(error);
  }
}

export type Handler = (call: IncomingCall) => Uint8Array | void | Promise<Uint8Array | void>;

interface ServerEvents {
  /** A handler threw; the call was aborted with `code`. */
  handlerError: [Error, IncomingCall, number];
  /** A warning about this kernel or configuration. */
  warning: [Error];
  /** The kernel refused a caller's security (bad, expired or unknown ticket): the call ended with this abort. */
  securityError: [RxAbortError, IncomingCall];
  error: [Error];
  close: [];
}

/** Kernels measured to break server-side upgrade (see README, Kernel support). */
export function upgradeWarning(kernelRelease = release()): string | undefined {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return undefined;
  const version = Number(m[1]) * 1000 + Number(m[2]);
  if (version <= 7003) {
    return `kernel ${kernelRelease}: server-side service upgrade was measured broken on Linux 6.1 to 7.3 ` +
      '(probes are aborted with RX_PROTOCOL_ERROR or answered on the original service)';
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
  private readonly calls = new Set<IncomingCall>();
  private readonly maxRequestBytes: number;
  private readonly keyring: Keyring | undefined;
  private handler: Handler;
  private listening = false;
  private closing: Promise<void> | undefined;

  constructor(options: ServerOptions, handler: Handler) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'an object', options);
    if (typeof handler !== 'function') throw new InvalidArgTypeError('handler', 'a function', handler);
    const family = checkAddress(options.address, 'options.address');
    const port = checkPort(options.port, 'options.port');
    const list = typeof options.services === 'number' ? [options.services] : options.services;
    if (!Array.isArray(list) || list.length < 1 || list.length > 2) {
      throw new InvalidArgValueError('options.services', 'must be one service ID or two', options.services);
    }
    const services = list.map((s, i) => checkService(s, `options.services[${i}]`));
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
    const backlog = options.backlog ?? limit;
    if (typeof backlog !== 'number') throw new InvalidArgTypeError('options.backlog', 'of type number', backlog);
    if (!Number.isInteger(backlog) || backlog < 1 || backlog > limit) {
      throw new OutOfRangeError('options.backlog', `an integer from 1 to net.rxrpc.max_backlog (${limit})`, backlog);
    }
    const maxBytes = options.maxRequestBytes ?? Infinity;
    if (typeof maxBytes !== 'number') throw new InvalidArgTypeError('options.maxRequestBytes', 'of type number', maxBytes);
    if (!(maxBytes >= 0) || (maxBytes !== Infinity && !Number.isInteger(maxBytes))) {
      throw new OutOfRangeError('options.maxRequestBytes', 'a whole number of bytes, or Infinity', maxBytes);
    }
    const security: CheckedServerSecurity | undefined =
      options.security === undefined ? undefined : checkServerSecurity(options.security, services, 'options.security');
    this.maxRequestBytes = maxBytes;
    this.address = options.address;
    this.port = port;
    this.services = services;
    this.upgrade = upgrade;
    this.handler = handler;
    this.endpoint = new Endpoint({ family, binding: options.binding, batch: options.batch });
    this.endpoint.on('error', (err) => this.emit('error', err));
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
   * Stops taking calls (new ones are aborted with RX_CALL_DEAD), lets those in progress finish for up to `timeout` ms
   * (default 5000), aborts the rest with RX_CALL_DEAD, and closes the socket.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.closing) return this.closing;
    const timeout = checkDuration(options.timeout, 'options.timeout') ?? 5000;
    this.closing = (async () => {
      // listen(0) would stop the kernel taking calls, but it also kills calls
      // in progress (measured on 6.1: callers see RX_CALL_DEAD). Instead the
      // pool is no longer recharged and calls arriving now are turned away.
      this.endpoint.stopAccepting();
      this.listening = false;
      if (this.calls.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([...this.calls].map((c) => c.finished)),
          new Promise((resolve) => (timer = setTimeout(resolve, timeout))),
        ]);
        clearTimeout(timer);
        for (const call of this.calls) call.abort(RX_CALL_DEAD);
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

  private onCall(call: Call): void {
    if (!this.listening) {
      call.abort(RX_CALL_DEAD);
      return;
    }
    const incoming = new IncomingCall(call, this.maxRequestBytes);
    this.calls.add(incoming);
    void incoming.finished.then((error) => {
      this.calls.delete(incoming);
      if (error instanceof RxAbortError && !error.local && isSecurityAbortCode(error.abortCode)) {
        this.emit('securityError', error, incoming);
      }
    });
    let result: ReturnType<Handler>;
    try {
      result = this.handler(incoming);
    } catch (err) {
      this.fail(incoming, err);
      return;
    }
    Promise.resolve(result).then(
      (reply) => {
        if (reply !== undefined && !(reply instanceof Uint8Array)) {
          // Never a silent empty reply for a value that was meant as one.
          this.fail(incoming, new InvalidArgTypeError('handler result', 'a Uint8Array or undefined', reply));
          return;
        }
        if (incoming.replied || call.isDone) return;
        // A returned body is the reply; returning nothing ends it empty.
        incoming.end(reply as Uint8Array | undefined).catch(() => {});
      },
      (err) => this.fail(incoming, err),
    );
  }

  private fail(call: IncomingCall, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const code = err instanceof RxAbortError ? err.abortCode : err instanceof MalformedError ? RXGEN_SS_UNMARSHAL : RX_USER_ABORT;
    call.abort(code);
    if (!(err instanceof RxAbortError)) this.emit('handlerError', error, call, code);
  }
}
