/**
 * Endpoint: one AF_RXRPC socket and the calls on it. It owns the policy the
 * native layer leaves open:
 *
 * - call ids come from a counter and are never reused, so a late terminal
 *   message for a call that already failed is recognised and dropped;
 * - the first sendmsg of a client call goes to the starter thread (it can
 *   sleep in the kernel, waiting for a channel), or to a bulk thread (below);
 * - the kernel gives no wakeup when a call's transmit window opens (poll()
 *   reports writable throughout), except to a sender sleeping in sendmsg. A
 *   call whose data starts with a chunk of BULK_MIN bytes or more therefore
 *   sends all its data, first send included, as sleeping sendmsg calls on a
 *   bulk thread (up to BULK_SENDS calls per endpoint). Other calls send with
 *   MSG_DONTWAIT, and what the kernel does not take stays queued on the call
 *   and is retried when that call next hears from the kernel or on a short
 *   backing-off timer. A call never mixes the two: on Linux 6.1 a sleeping
 *   sendmsg after a MSG_DONTWAIT send that the window cut short stalled the
 *   call for a second or more (the server then aborts it, RX_CALL_TIMEOUT)
 *   in about one 4 MiB upload in five; sleeping sends from the first one on
 *   never did;
 * - a listening endpoint keeps the accept pool charged, and its calls' data
 *   is read as soon as it arrives (the poll watcher reads everything).
 */
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { RX_CALL_DEAD, RX_USER_ABORT } from './constants';
import { RxAddress, SendControl } from './codec';
import { Challenge } from './security/rxgk';
import { InvalidArgTypeError, OutOfRangeError, RxAbortError } from './errors';
import { EAGAIN } from './native';
import { BlockingSend, RawSocket, RawSocketOptions, ReceivedMessage } from './socket';

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
  /** How this call sends: undecided, on a bulk thread (holds a slot until done), or MSG_DONTWAIT. */
  private mode: 'unset' | 'bulk' | 'dontwait' = 'unset';
  private bulk: BlockingSend | undefined; // a send in progress on a bulk thread
  private done = false;
  private abortCode: number | undefined;
  private received = false; // the last data of the incoming phase has been delivered
  private drainWaiters: Array<() => void> = [];
  private grace: NodeJS.Timeout | undefined; // waiting for the terminal message of an aborted call

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
    // A bulk send holds the call locked in the kernel: end it first (this
    // returns once the thread is out of sendmsg). A call still being started
    // is aborted once the kernel has it (started()).
    if (this.bulk) this.bulk.interrupt();
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
    this.bulk = undefined;
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
    if (this.starting || this.bulk || this.done || this.grace) return true;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (this.mode === 'unset' && head.data.length >= BULK_MIN) this.chooseMode();
      if (this.mode === 'bulk') {
        this.sendBulk(head);
        return false;
      }
      let sent: number;
      try {
        sent = this.endpoint.raw.send({ callId: this.id }, head.data, { more: head.more });
      } catch (err) {
        this.failSend(err as Error);
        return true;
      }
      if (sent === -EAGAIN) sent = 0;
      this.queuedBytes -= sent;
      if (sent < head.data.length) {
        head.data = head.data.subarray(sent);
        this.mode = 'dontwait';
        this.endpoint.blocked(this, sent > 0);
        return false;
      }
      this.queue.shift();
    }
    const waiters = this.drainWaiters.splice(0);
    for (const w of waiters) w();
    return true;
  }

  /** @internal a sendmsg of this call failed */
  failSend(err: Error): void {
    this.starting = false;
    this.bulk = undefined;
    if ((err as { code?: string }).code === 'ECONNABORTED' && !this.endpoint.isClosed) {
      // The call was aborted before or while the send ran (under load the
      // peer's abort can even beat the first sendmsg back). Its terminal
      // message, with the abort code, follows: report that, not the errno.
      this.queue = [];
      this.queuedBytes = 0;
      this.grace = setTimeout(() => this.finish({ ok: false, error: err }), TERMINAL_GRACE_MS);
      return;
    }
    // A refused send can leave the call alive in the kernel (EMSGSIZE does): end it there too.
    if (!this.endpoint.isClosed) this.sendAbort();
    this.finish({ ok: false, error: err });
  }

  /** @internal decides how this call sends, once: on a bulk thread when a slot is free. */
  chooseMode(): 'bulk' | 'dontwait' {
    if (this.mode === 'unset') this.mode = this.endpoint.takeBulkSlot() ? 'bulk' : 'dontwait';
    return this.mode;
  }

  /** @internal a send of this call is on a bulk thread (the first one, or sendBulk's) */
  onBulkThread(bulk: BlockingSend): void {
    this.endpoint.stats.bulkSends++;
    this.bulk = bulk;
  }

  private sendBulk(head: Pending): void {
    const bulk = this.endpoint.raw.sendBlocking({ callId: this.id }, head.data, { more: head.more });
    this.onBulkThread(bulk);
    bulk.sent.then(
      (sent) => this.bulkDone(head, sent, undefined),
      (err: Error) => this.bulkDone(head, 0, err),
    );
  }

  private bulkDone(head: Pending, sent: number, err: Error | undefined): void {
    this.bulk = undefined;
    if (this.done) return; // aborted (and the abort sent) or ended by the kernel meanwhile
    if (err) {
      this.failSend(err);
      return;
    }
    if (sent === 0 && head.data.length > 0) {
      // Nothing moved (EAGAIN or a wake): pace the next try by the timer.
      this.endpoint.blocked(this);
      return;
    }
    // Nothing else is sent while a bulk send runs, so `head` is still first.
    this.queuedBytes -= sent;
    if (sent >= head.data.length) this.queue.shift();
    else head.data = head.data.subarray(sent);
    this.flush();
  }

  /** @internal */
  finish(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    if (this.grace) clearTimeout(this.grace);
    if (this.mode === 'bulk') this.endpoint.releaseBulkSlot();
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
  /** A security challenge for user space to answer (RXRPC_MANAGE_RESPONSE set): raw.respondToChallenge / rejectChallenge. */
  challenge: [{ oobId: bigint; challenge: Challenge }];
  error: [Error];
  close: [];
}

export interface EndpointOptions extends RawSocketOptions {
  /** An existing socket to drive (tests, or a socket set up by hand). */
  socket?: RawSocket;
}

const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 16;
/** Calls per endpoint at most that send on bulk threads (sleeping sendmsg). */
export const BULK_SENDS = 4;
/** A call whose data starts with a chunk this large sends it on a bulk thread. */
export const BULK_MIN = 64 * 1024;
/** How long a call whose send failed with ECONNABORTED waits for its terminal message (the abort code). */
const TERMINAL_GRACE_MS = 2000;

export class Endpoint extends EventEmitter<EndpointEvents> {
  readonly raw: RawSocket;
  private nextId = 1;
  private readonly calls = new Map<number, Call>();
  private readonly charged = new Set<number>();
  private backlog = 0;
  private readonly blockedCalls = new Set<Call>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private bulkSends = 0;
  private closed = false;
  /** Counters of what the send and receive paths met. */
  readonly stats = {
    /** sendmsg calls the kernel refused with EAGAIN (retried later). */
    sendAgain: 0,
    /** sendmsg calls the kernel took only in part (the rest retried later). */
    partialSends: 0,
    /** Sends handed to a bulk thread, which sleeps until the kernel takes all of it. */
    bulkSends: 0,
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
    let sending: Promise<number>;
    if (first.length >= BULK_MIN && this.bulkSlotFree()) {
      // Sent before the slot is taken: an encoding error must not hold it.
      const bulk = this.raw.sendBlocking(control, first, { target, more });
      call.chooseMode(); // takes the free slot
      call.onBulkThread(bulk);
      sending = bulk.sent;
    } else {
      sending = this.raw.sendAsync(control, first, { target, more });
    }
    this.calls.set(id, call);
    sending.then(
      (sent) => {
        if (sent === -EAGAIN) sent = 0;
        call.started(sent, pending);
      },
      (err: Error) => {
        // A failed first sendmsg can leave the call in the kernel, holding one
        // of the peer's channels until the socket closes: failSend aborts it there.
        call.failSend(err);
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

  private bulkSlotFree(): boolean {
    return !this.closed && this.bulkSends < BULK_SENDS;
  }

  /** @internal true when a call may send on a bulk thread; it then holds the slot until it ends */
  takeBulkSlot(): boolean {
    if (!this.bulkSlotFree()) return false;
    this.bulkSends++;
    return true;
  }

  /** @internal */
  releaseBulkSlot(): void {
    this.bulkSends--;
  }

  /** @internal a call could not send all it had queued */
  blocked(call: Call, progressed = false): void {
    if (progressed) this.stats.partialSends++;
    else this.stats.sendAgain++;
    if (progressed) this.retryDelay = RETRY_MIN_MS;
    this.blockedCalls.add(call);
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
    if (m.oob) {
      if (m.kind === 'challenge' && m.oob.challenge) this.emit('challenge', { oobId: m.oob.id, challenge: m.oob.challenge });
      return;
    }
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
