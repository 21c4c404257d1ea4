/**
 * Endpoint: one AF_RXRPC socket and the calls on it. It owns the policy the
 * native layer leaves open:
 *
 * - call ids come from a counter and are never reused, so a late terminal
 *   message for a call that already failed is recognised and dropped;
 * - the first sendmsg of a client call goes to the sender thread (it can
 *   sleep in the kernel); everything after it is sent on this thread with
 *   MSG_DONTWAIT;
 * - a send the kernel takes only in part (or not at all, EAGAIN) stays queued
 *   on its call and is retried when that call next hears from the kernel or
 *   on a short backing-off timer: the kernel gives no wakeup when a call's
 *   transmit window opens, and poll() reports writable throughout;
 * - a listening endpoint keeps the accept pool charged, and its calls' data
 *   is read as soon as it arrives (the poll watcher reads everything).
 */
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { RX_CALL_DEAD, RX_USER_ABORT } from './constants';
import { RxAddress, SendControl } from './codec';
import { InvalidArgTypeError, OutOfRangeError, RxAbortError } from './errors';
import { EAGAIN } from './native';
import { RawSocket, RawSocketOptions, ReceivedMessage } from './socket';

/** A network or local error that ended a call (RXRPC_NET_ERROR / RXRPC_LOCAL_ERROR). */
export class CallError extends Error {
  readonly errno: number;
  constructor(readonly kind: 'net-error' | 'local-error', errno: number, readonly code: string) {
    super(`Call failed with a ${kind === 'net-error' ? 'network' : 'local'} error: ${code} (errno ${errno})`);
    this.name = 'CallError';
    this.errno = -errno;
  }
}

/** Calls still open when their endpoint closed. */
export class EndpointClosedError extends Error {
  readonly code = 'ERR_SOCKET_CLOSED';
  constructor() {
    super('The endpoint was closed while the call was in progress');
    this.name = 'EndpointClosedError';
  }
}

export interface StartOptions {
  /** Ask the server to upgrade the service (RXRPC_UPGRADE_SERVICE). */
  upgrade?: boolean;
  /** Put the call on a connection of its own (RXRPC_EXCLUSIVE_CALL). */
  exclusive?: boolean;
  /** Kernel call timeouts: [hard s, idle ms, normal ms] (RXRPC_SET_CALL_TIMEOUT). */
  kernelTimeouts?: SendControl['timeouts'];
  /** Total request length in bytes, announced up front (RXRPC_TX_LENGTH). */
  txLength?: number | bigint;
}

type Outcome = { ok: true } | { ok: false; error: Error };

interface Pending {
  data: Uint8Array;
  more: boolean;
}

// errno values the kernel reports in NET_ERROR / LOCAL_ERROR, by name.
const ERRNO_NAMES = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value as number, name]),
);
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** One Rx call, client or server side. */
export class Call {
  /** Service ID: the one asked for (client) until a reply says which answered; the one called (server). */
  service: number;
  /** Set by the owner: call data as it arrives; `end` marks the last of this phase. */
  ondata: (chunk: Buffer, end: boolean) => void = () => {};
  /** Set by the owner: the call ended, successfully or not. Called once. */
  ondone: (error: Error | undefined) => void = () => {};
  /** Bytes queued and not yet taken by the kernel. */
  queuedBytes = 0;
  private queue: Pending[] = [];
  private starting: boolean;
  private done = false;
  private abortCode: number | undefined;
  private received = false; // the last data of the incoming phase has been delivered
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly endpoint: Endpoint,
    readonly id: number,
    readonly role: 'client' | 'server',
    readonly peer: { address: string; port: number },
    service: number,
  ) {
    this.service = service;
    this.starting = role === 'client';
  }

  get isDone(): boolean {
    return this.done;
  }

  /** Queues data for this call; `more` says that more follows. */
  write(data: Uint8Array, more: boolean): void {
    if (this.done) return;
    this.queue.push({ data, more });
    this.queuedBytes += data.length;
    this.flush();
  }

  /** Resolves once everything written so far has been taken by the kernel. */
  drained(): Promise<void> {
    if (this.queue.length === 0 || this.done) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Aborts the call on the wire with `code` (RX_USER_ABORT by default). */
  abort(code = RX_USER_ABORT, reason?: Error): void {
    // The kernel refuses code 0 (EINVAL): the call would go on while reported aborted.
    if (!Number.isInteger(code) || code === 0 || code < -0x80000000 || code > 0xffffffff) {
      throw new OutOfRangeError('code', 'a non-zero 32-bit abort code', code);
    }
    if (this.done) return;
    this.abortCode = code;
    // A call still being started is aborted once the kernel has it (started()).
    if (!this.starting) this.sendAbort();
    this.finish({ ok: false, error: reason ?? new RxAbortError(code, true) });
  }

  /** @internal aborts the call in the kernel; EBADSLT/ESHUTDOWN mean it is already gone there. */
  sendAbort(code = this.abortCode ?? RX_USER_ABORT): void {
    try {
      this.endpoint.raw.send({ callId: this.id, abort: code });
    } catch {
      // The call is already gone in the kernel; its terminal message says why.
    }
  }

  /**
   * @internal data from recvmsg. The kernel marks the last data of a phase by
   * leaving MSG_MORE clear (MSG_EOR comes only with the call's completion);
   * empty messages after that, which the kernel can deliver, carry nothing.
   */
  deliver(data: Buffer, more: boolean): void {
    const last = !more && !this.received;
    if (last) this.received = true;
    if (data.length > 0 || last) this.ondata(data, last);
  }

  /** @internal the first send of a client call completed */
  started(sent: number, first: Pending): void {
    this.starting = false;
    if (this.done) {
      if (this.abortCode !== undefined && !this.endpoint.isClosed) this.sendAbort();
      return;
    }
    if (sent < first.data.length) {
      this.queue.unshift({ data: first.data.subarray(sent), more: first.more });
      this.queuedBytes += first.data.length - sent;
    }
    this.flush();
  }

  /** @internal send what is queued; false when the kernel could not take it all */
  flush(): boolean {
    if (this.starting || this.done) return true;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      let sent: number;
      try {
        sent = this.endpoint.raw.send({ callId: this.id }, head.data, { more: head.more });
      } catch (err) {
        // A refused send can leave the call alive in the kernel (EMSGSIZE does): end it there too.
        this.sendAbort();
        this.finish({ ok: false, error: err as Error });
        return true;
      }
      if (sent === -EAGAIN) {
        this.endpoint.blocked(this);
        return false;
      }
      this.queuedBytes -= sent;
      if (sent < head.data.length) {
        head.data = head.data.subarray(sent);
        this.endpoint.blocked(this, true);
        return false;
      }
      this.queue.shift();
    }
    const waiters = this.drainWaiters.splice(0);
    for (const w of waiters) w();
    return true;
  }

  /** @internal */
  finish(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.endpoint.forget(this);
    const waiters = this.drainWaiters.splice(0);
    for (const w of waiters) w();
    this.ondone(outcome.ok ? undefined : outcome.error);
  }
}

interface EndpointEvents {
  /** A new incoming call (listening endpoints). */
  call: [Call];
  error: [Error];
  close: [];
}

export interface EndpointOptions extends RawSocketOptions {
  /** An existing socket to drive (tests, or a socket set up by hand). */
  socket?: RawSocket;
}

const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 16;

export class Endpoint extends EventEmitter<EndpointEvents> {
  readonly raw: RawSocket;
  private nextId = 1;
  private readonly calls = new Map<number, Call>();
  private readonly charged = new Set<number>();
  private backlog = 0;
  private readonly blockedCalls = new Set<Call>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private closed = false;
  /** Counters of what the send and receive paths met. */
  readonly stats = {
    /** sendmsg calls the kernel refused with EAGAIN (retried later). */
    sendAgain: 0,
    /** sendmsg calls the kernel took only in part (the rest retried later). */
    partialSends: 0,
    /** Messages for call ids no longer tracked (late terminals of failed calls). */
    strayMessages: 0,
  };

  constructor(options: EndpointOptions = {}) {
    super();
    this.raw = options.socket ?? new RawSocket(options);
    this.raw.on('message', (m) => this.onMessage(m));
    this.raw.on('error', (err) => this.emit('error', err));
  }

  /** Calls in progress. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Starts listening with `backlog` accept charges kept in the pool. */
  listen(backlog = 8): void {
    if (typeof backlog !== 'number') throw new InvalidArgTypeError('backlog', 'of type number', backlog);
    if (!Number.isInteger(backlog) || backlog < 1 || backlog > 1000) {
      throw new OutOfRangeError('backlog', 'an integer from 1 to 1000 (and at most net.rxrpc.max_backlog)', backlog);
    }
    this.raw.listen(backlog);
    this.backlog = backlog;
    this.recharge();
  }

  /**
   * Stops recharging the accept pool. Charges already given may still turn
   * into calls; the owner decides what to do with them.
   */
  stopAccepting(): void {
    this.backlog = 0;
  }

  /**
   * Starts a client call to `target` with the first part of the request.
   * The call's data and end arrive through call.ondata / call.ondone.
   */
  startCall(target: RxAddress, first: Uint8Array, more: boolean, options: StartOptions = {}): Call {
    if (this.closed) throw new EndpointClosedError();
    const id = this.nextId++;
    const call = new Call(this, id, 'client', { address: target.address, port: target.port }, target.service);
    const control: SendControl = {
      callId: id,
      upgrade: options.upgrade,
      exclusive: options.exclusive,
      timeouts: options.kernelTimeouts,
      txLength: options.txLength,
    };
    const pending: Pending = { data: first, more };
    // Encoding errors surface here, synchronously, before the call exists.
    const sending = this.raw.sendAsync(control, first, { target, more });
    this.calls.set(id, call);
    sending.then(
      (sent) => {
        if (sent === -EAGAIN) sent = 0;
        call.started(sent, pending);
      },
      (err: Error) => {
        // A failed first sendmsg can leave the call in the kernel, holding one
        // of the peer's channels until the socket closes: abort it there.
        if (!this.closed) call.sendAbort();
        call.finish({ ok: false, error: err });
      },
    );
    return call;
  }

  /** Closes the socket; every call still open fails with EndpointClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.raw.close();
    const calls = [...this.calls.values()];
    for (const call of calls) call.finish({ ok: false, error: new EndpointClosedError() });
    this.charged.clear();
    process.nextTick(() => this.emit('close'));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal a call could not send all it had queued */
  blocked(call: Call, progressed = false): void {
    if (progressed) this.stats.partialSends++;
    else this.stats.sendAgain++;
    this.blockedCalls.add(call);
    if (progressed) this.retryDelay = RETRY_MIN_MS;
    if (!this.retryTimer) this.retryTimer = setTimeout(() => this.retry(), this.retryDelay);
  }

  /** @internal */
  forget(call: Call): void {
    this.calls.delete(call.id);
    this.blockedCalls.delete(call);
  }

  private retry(): void {
    this.retryTimer = undefined;
    const calls = [...this.blockedCalls];
    this.blockedCalls.clear();
    const before = calls.reduce((n, c) => n + c.queuedBytes, 0);
    for (const call of calls) call.flush();
    const after = calls.reduce((n, c) => n + c.queuedBytes, 0);
    // Back off while nothing moves; start again from the minimum on progress.
    this.retryDelay = after < before ? RETRY_MIN_MS : Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    if (this.blockedCalls.size > 0 && !this.retryTimer) {
      this.retryTimer = setTimeout(() => this.retry(), this.retryDelay);
    }
  }

  private recharge(): void {
    while (!this.closed && this.charged.size < this.backlog) {
      const id = this.nextId++;
      try {
        this.raw.send({ callId: id, chargeAccept: true });
      } catch (err) {
        this.emit('error', err as Error);
        return;
      }
      this.charged.add(id);
    }
  }

  private onMessage(m: ReceivedMessage): void {
    let call = this.calls.get(m.callId);
    if (!call) {
      if (!this.charged.delete(m.callId)) {
        this.stats.strayMessages++;
        return;
      }
      call = new Call(this, m.callId, 'server', { address: m.peer.address, port: m.peer.port }, m.service);
      this.calls.set(call.id, call);
      this.recharge();
      this.emit('call', call);
      if (call.isDone) return;
    }
    switch (m.kind) {
      case 'data':
        if (call.role === 'client') call.service = m.service;
        call.deliver(m.data, m.more);
        // MSG_EOR on data ends a client call: the reply is complete.
        if (call.role === 'client' && m.end) call.finish({ ok: true });
        else call.flush();
        return;
      case 'ack':
        call.finish({ ok: true });
        return;
      case 'abort':
        call.finish({ ok: false, error: new RxAbortError(m.code) });
        return;
      case 'net-error':
      case 'local-error':
        call.finish({ ok: false, error: new CallError(m.kind, m.code, errnoName(m.code)) });
        return;
      case 'busy':
        call.finish({ ok: false, error: new RxAbortError(RX_CALL_DEAD, false, 'server busy') });
        return;
      default:
        return;
    }
  }
}
