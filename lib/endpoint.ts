/**
 * Endpoint: one AF_RXRPC socket and the calls on it. It owns the policy the
 * native layer leaves open:
 *
 * - call ids come from a counter and are never reused, so a late terminal
 *   message for a call that already failed is recognised and dropped;
 * - the first sendmsg of a client call goes to a starter thread (it can
 *   sleep in the kernel, waiting for a channel; the native layer runs first
 *   sends to different peers on different threads), or to a bulk thread;
 *   an abort or timeout interrupts it there;
 * - the kernel gives no wakeup when a call's transmit window opens (poll()
 *   reports writable throughout), except to a sender sleeping in sendmsg. A
 *   call whose data starts with a chunk of BULK_MIN bytes or more therefore
 *   sends all its data, first send included, as sleeping sendmsg calls on a
 *   bulk thread (up to BULK_SENDS calls per endpoint). Other calls send with
 *   MSG_DONTWAIT, and what the kernel does not take stays queued on the call
 *   and is retried when that call next hears from the kernel or on a short
 *   backing-off timer. Once a MSG_DONTWAIT send of a call has been cut
 *   short (a first send included), the call never sends on a bulk thread:
 *   on Linux 6.1 a sleeping sendmsg after a MSG_DONTWAIT send that the window
 *   cut short stalled the call for a second or more (the server then aborts
 *   it, RX_CALL_TIMEOUT) in about one 4 MiB upload in five; sleeping sends
 *   from the first one on never did;
 * - what a call is handed to send is the call's from then on: the kernel
 *   takes it, a send thread copies it, or the call copies what is left, all
 *   before write() returns, so callers may reuse their buffers at once;
 * - a listening endpoint keeps the accept pool charged, and its calls' data
 *   is read as soon as it arrives (the poll watcher reads everything);
 * - a message the kernel delivers that cannot be decoded ends its call with
 *   a MalformedError, never silently.
 */
import { EventEmitter } from 'node:events';
import { RX_CALL_DEAD, RX_USER_ABORT } from './constants';
import { RxAddress, SendControl } from './codec';
import { Challenge } from './security/rxgk';
import { errnoName } from './errno';
import { checkAbortCode, checkBytes, checkObject, emitError, InvalidArgTypeError, OutOfRangeError, RxAbortError } from './errors';
import { EAGAIN } from './native';
import { IdTable } from './idtable';
import { RawSocket, RawSocketOptions, ReceivedMessage } from './socket';

export { errnoName };

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
  constructor(what = 'The endpoint was closed while the call was in progress') {
    super(what);
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
  /** The bytes are the call's own (a copy, or a send thread's), not a caller's buffer. */
  owned: boolean;
}

/**
 * Where a call's sending stands. One state at a time:
 * - idle: nothing is on a thread; what is queued goes out on the next flush
 *   (MSG_DONTWAIT), or is waiting for the retry timer;
 * - thread: a send is on a thread of the socket (the first send of a client
 *   call, on a starter or bulk thread, or a bulk send); nothing else is sent
 *   until it completes;
 * - ending: a send failed with ECONNABORTED or ESHUTDOWN, and the terminal
 *   message that carries the abort code is awaited;
 * - done: the call has ended.
 */
type SendState =
  | { kind: 'idle' }
  | { kind: 'thread'; token: number }
  | { kind: 'ending'; timer: NodeJS.Timeout }
  | { kind: 'done' };

// The states without data are shared by every call.
const IDLE: SendState = Object.freeze({ kind: 'idle' });
const DONE: SendState = Object.freeze({ kind: 'done' });
const NO_OPTIONS: StartOptions = Object.freeze({});
const OK: Outcome = Object.freeze({ ok: true });
// The owner's hooks until it sets its own: one function for every call, not a closure each.
const IGNORE_DATA = (_chunk: Buffer, _end: boolean): void => {};
const IGNORE_DONE = (_error: Error | undefined): void => {};

/**
 * @internal What a layer above that owns a call implements, in place of
 * setting ondata and ondone: two methods of an object it has anyway, not two
 * closures per call. (ClientCall and IncomingCall are owners; they do not
 * name this interface, which the published typings leave out.)
 */
export interface CallOwner {
  callData(chunk: Buffer, end: boolean): void;
  callDone(error: Error | undefined): void;
}

/** One Rx call, client or server side. */
export class Call {
  /** Service ID: the one asked for (client) until a reply says which answered; the one called (server). */
  service: number;
  /** Set by the owner: call data as it arrives; `end` marks the last of this phase. */
  ondata: (chunk: Buffer, end: boolean) => void = IGNORE_DATA;
  /** Set by the owner: the call ended, successfully or not. Called once. */
  ondone: (error: Error | undefined) => void = IGNORE_DONE;
  /** @internal told instead of ondata and ondone when set */
  owner: CallOwner | undefined;
  /** Bytes written and not yet taken by the kernel. */
  queuedBytes = 0;
  private queue: Pending[] = [];
  private state: SendState = IDLE;
  /**
   * How this call sends, once decided, and then for good: on a bulk thread
   * (holding one of the endpoint's bulk slots until it ends) or with
   * MSG_DONTWAIT. Undecided while every send so far was small and taken
   * whole; the first chunk of BULK_MIN bytes or more then decides (bulk, if a
   * slot is free), and so does the first send the kernel cuts short
   * (MSG_DONTWAIT: a sleeping send after that can stall on Linux 6.1).
   */
  private mode: 'bulk' | 'dontwait' | undefined;
  /** The kernel may know the call: a server call, or a client call whose first send has returned. */
  private known: boolean;
  private abortCode: number | undefined;
  private received = false; // the last data of the incoming phase has been delivered
  private drainWaiters: Array<() => void> | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    readonly id: number,
    readonly role: 'client' | 'server',
    readonly peer: { address: string; port: number },
    service: number,
  ) {
    this.service = service;
    this.known = role === 'server';
  }

  get isDone(): boolean {
    return this.state.kind === 'done';
  }

  /** How the call sends ('bulk' or 'dontwait'), once decided; undefined while undecided. */
  get sendMode(): 'bulk' | 'dontwait' | undefined {
    return this.mode;
  }

  /**
   * Queues data for this call; `more` says that more follows. What the kernel
   * does not take at once is copied: `data` is free when this returns.
   */
  write(data: Uint8Array, more: boolean): void {
    checkBytes(data, 'data');
    if (typeof more !== 'boolean') throw new InvalidArgTypeError('more', 'of type boolean', more);
    if (this.isDone || this.state.kind === 'ending') return;
    if (this.state.kind === 'idle' && this.queue.length === 0 && this.mode !== 'bulk' &&
        (this.mode === 'dontwait' || data.length < BULK_MIN)) {
      // Nothing queued or on a thread, and not a bulk send: straight to the
      // kernel (as flush would send it), with no queue entry unless the
      // kernel leaves some of it, which is copied.
      this.mode = 'dontwait';
      this.queuedBytes += data.length;
      const sent = this.sendDontWait(data, more);
      if (sent >= 0 && sent < data.length) this.queue.push({ data: Buffer.from(data.subarray(sent)), more, owned: true });
      return;
    }
    const item: Pending = { data, more, owned: false };
    this.queue.push(item);
    this.queuedBytes += data.length;
    this.flush();
    if (!item.owned && this.queue.includes(item)) {
      item.data = Buffer.from(item.data);
      item.owned = true;
    }
  }

  /** Resolves once everything written so far has been taken by the kernel, or the call has ended. */
  drained(): Promise<void> {
    if (this.isDone || (this.queue.length === 0 && this.state.kind === 'idle')) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    if (!waiters) return;
    this.drainWaiters = undefined;
    for (const w of waiters) w();
  }

  /** Aborts the call on the wire with `code` (RX_USER_ABORT by default); a bad code throws and changes nothing. */
  abort(code: number = RX_USER_ABORT, reason?: Error): void {
    // The kernel refuses code 0 (EINVAL): the call would go on while reported aborted.
    checkAbortCode(code, 'code');
    if (this.isDone) return;
    this.abortCode = code;
    // A send on a thread is interrupted first: a first send may be asleep
    // waiting for a channel (the kernel does not know the call yet, and would
    // refuse the abort), a bulk send holds the call while it copies data.
    // A call not yet known to the kernel is aborted when its first send returns.
    if (this.state.kind === 'thread') this.endpoint.raw.interruptSend(this.state.token);
    if (this.known) this.sendAbort();
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
    if (data.length > 0 || last) {
      if (this.owner) this.owner.callData(data, last);
      else this.ondata(data, last);
    }
  }

  /** @internal the first send of a client call is on a thread (token); `bulk` when on a bulk thread */
  begin(token: number, length: number, bulk: boolean): void {
    if (bulk) this.mode = this.endpoint.takeBulkSlot() ? 'bulk' : 'dontwait';
    this.queuedBytes += length;
    this.onThread(token);
  }

  /** @internal send what is queued; nothing while a send is on a thread */
  flush(): void {
    if (this.state.kind !== 'idle') return;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (this.mode === undefined) {
        this.mode = head.data.length >= BULK_MIN && this.endpoint.takeBulkSlot() ? 'bulk' : 'dontwait';
      }
      if (this.mode === 'bulk') {
        this.queue.shift();
        let token: number;
        try {
          token = this.endpoint.raw.submit({ callId: this.id }, head.data, undefined, head.more, true,
            (sent, err, rest) => this.threadDone(token, head, false, sent, err, rest));
        } catch (err) {
          this.failSend(err as Error);
          return;
        }
        this.onThread(token);
        return;
      }
      const sent = this.sendDontWait(head.data, head.more);
      if (sent < 0) return;
      if (sent < head.data.length) {
        head.data = head.data.subarray(sent);
        return;
      }
      this.queue.shift();
    }
    this.wakeDrainWaiters();
  }

  /**
   * One MSG_DONTWAIT sendmsg of `data`: the bytes the kernel took, or -1 when
   * the send failed (the call has then failed, or awaits its terminal
   * message). A send cut short marks the call MSG_DONTWAIT for good (never a
   * sleeping send after this) and blocked until a retry.
   */
  private sendDontWait(data: Uint8Array, more: boolean): number {
    let sent: number;
    try {
      sent = this.endpoint.raw.sendData(this.id, data, more);
    } catch (err) {
      this.failSend(err as Error);
      return -1;
    }
    if (sent === -EAGAIN) sent = 0;
    this.queuedBytes -= sent;
    if (sent < data.length) {
      this.mode = 'dontwait';
      this.endpoint.blocked(this, sent > 0);
    }
    return sent;
  }

  /** @internal a sendmsg of this call failed */
  failSend(err: Error): void {
    if (this.isDone) return;
    // The socket closing fails the sends still on its threads (synchronously,
    // within Endpoint.close): the call ends as every call does then.
    if (this.endpoint.isClosed) {
      this.finish({ ok: false, error: new EndpointClosedError() });
      return;
    }
    const code = (err as { code?: string }).code;
    if ((code === 'ECONNABORTED' || code === 'ESHUTDOWN') && !this.endpoint.isClosed) {
      // The call was aborted or ended in the kernel before or while the send
      // ran (under load the peer's abort can even beat the first sendmsg
      // back; ESHUTDOWN: the call was already complete). Its terminal
      // message, with the abort code, follows: report that, not the errno.
      this.queue = [];
      this.queuedBytes = 0;
      this.state = { kind: 'ending', timer: setTimeout(() => this.finish({ ok: false, error: err }), TERMINAL_GRACE_MS) };
      return;
    }
    // A refused send can leave the call alive in the kernel (EMSGSIZE does,
    // and so can a failed first send, holding one of the peer's channels
    // until the socket closes): end it there too.
    if (!this.endpoint.isClosed) this.sendAbort();
    this.finish({ ok: false, error: err });
  }

  private onThread(token: number): void {
    this.state = { kind: 'thread', token };
    if (this.mode === 'bulk') this.endpoint.stats.bulkSends++;
  }

  /**
   * @internal a send on a thread completed: `sent` bytes taken (a blocking
   * send's EAGAIN or interrupt counts as none), or `err`; `rest` is the
   * thread's copy of what it did not take.
   */
  threadDone(token: number, head: Pending, first: boolean, sent: number, err: Error | undefined, rest: Buffer | undefined): void {
    if (first) this.known = true;
    if (this.state.kind === 'thread' && this.state.token === token) this.state = IDLE;
    // A bulk send interrupted before it took anything took nothing (as RawSocket.sendBlocking reports it).
    if (err && this.mode === 'bulk' && (err as { code?: string }).code === 'EINTR') err = undefined;
    if (this.isDone) {
      // Aborted while its first send was under way: the kernel may have the call by now.
      if (first && this.abortCode !== undefined && !this.endpoint.isClosed) this.sendAbort();
      return;
    }
    if (err) {
      this.failSend(err);
      return;
    }
    if (sent < 0) sent = 0; // EAGAIN: nothing taken
    this.queuedBytes -= sent;
    if (sent < head.data.length) {
      // A first send on a starter thread cut short: MSG_DONTWAIT for good.
      if (this.mode === undefined) this.mode = 'dontwait';
      // The thread's own copy of what is left; the caller's buffer may be gone.
      this.queue.unshift({ data: rest ?? Buffer.from(head.data.subarray(sent)), more: head.more, owned: true });
      if (sent === 0 && this.mode === 'bulk') {
        // Nothing moved (EAGAIN or a wake): pace the next try by the timer.
        this.endpoint.blocked(this);
        return;
      }
    }
    this.flush();
  }

  /** @internal */
  finish(outcome: Outcome): void {
    if (this.isDone) return;
    if (this.state.kind === 'ending') clearTimeout(this.state.timer);
    this.state = DONE;
    if (this.mode === 'bulk') this.endpoint.releaseBulkSlot();
    if (this.queue.length > 0) this.queue = [];
    this.queuedBytes = 0;
    this.endpoint.forget(this);
    this.wakeDrainWaiters();
    const error = outcome.ok ? undefined : outcome.error;
    if (this.owner) this.owner.callDone(error);
    else this.ondone(error);
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
const CHARGE_RETRY_MIN_MS = 50;
const CHARGE_RETRY_MAX_MS = 2000;
/** Calls per endpoint at most that send on bulk threads (sleeping sendmsg). */
export const BULK_SENDS = 4;
/** A call whose data starts with a chunk this large sends it on a bulk thread. */
export const BULK_MIN = 64 * 1024;
/** How long a call whose send failed with ECONNABORTED or ESHUTDOWN waits for its terminal message (the abort code). */
const TERMINAL_GRACE_MS = 2000;

export class Endpoint extends EventEmitter<EndpointEvents> {
  readonly raw: RawSocket;
  private nextId = 1;
  private readonly calls = new IdTable<Call>();
  private readonly charged = new IdTable<true>();
  private backlog = 0;
  private readonly blockedCalls = new Set<Call>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private chargeTimer: NodeJS.Timeout | undefined;
  private chargeDelay = CHARGE_RETRY_MIN_MS;
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
    /** Messages the kernel delivered that could not be decoded (each ended its call). */
    malformedMessages: 0,
    /** Accept charges the kernel refused (retried on a timer). */
    chargeFailures: 0,
  };

  constructor(options: EndpointOptions = {}) {
    super();
    checkObject(options, 'options');
    if (options.socket !== undefined && !(options.socket instanceof RawSocket)) {
      throw new InvalidArgTypeError('options.socket', 'a RawSocket', options.socket);
    }
    this.raw = options.socket ?? new RawSocket(options);
    this.raw.on('message', (m) => this.onMessage(m));
    this.raw.on('error', (err) => emitError(this, err));
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
    if (this.closed) throw new EndpointClosedError('The endpoint is closed');
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
   * `first` is free when this returns (the send thread has a copy).
   */
  startCall(target: RxAddress, first: Uint8Array, more: boolean, options: StartOptions = NO_OPTIONS): Call {
    if (this.closed) throw new EndpointClosedError('The endpoint is closed');
    checkObject(target, 'target', 'an object { service, address, port }');
    checkBytes(first, 'first');
    if (typeof more !== 'boolean') throw new InvalidArgTypeError('more', 'of type boolean', more);
    checkObject(options, 'options');
    if (options.upgrade !== undefined && typeof options.upgrade !== 'boolean') {
      throw new InvalidArgTypeError('options.upgrade', 'of type boolean', options.upgrade);
    }
    if (options.exclusive !== undefined && typeof options.exclusive !== 'boolean') {
      throw new InvalidArgTypeError('options.exclusive', 'of type boolean', options.exclusive);
    }
    const id = this.nextId++;
    const control: SendControl = options === NO_OPTIONS ? { callId: id } : {
      callId: id,
      upgrade: options.upgrade,
      exclusive: options.exclusive,
      timeouts: options.kernelTimeouts,
      txLength: options.txLength,
    };
    // Encoding errors surface here, synchronously, before the call exists.
    // The thread has its own copy of `first`: what comes back (`rest`) is that copy.
    const bulk = first.length >= BULK_MIN && this.bulkSlotFree();
    const head: Pending = { data: first, more, owned: true };
    let call: Call | undefined;
    const token = this.raw.submit(control, first, target, more, bulk, (sent, err, rest) => call!.threadDone(token, head, true, sent, err, rest));
    call = new Call(this, id, 'client', { address: target.address, port: target.port }, target.service);
    this.calls.set(id, call);
    call.begin(token, first.length, bulk);
    return call;
  }

  /** Closes the socket; every call still open fails with EndpointClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.chargeTimer) clearTimeout(this.chargeTimer);
    this.raw.close();
    const calls = this.calls.values();
    for (const call of calls) call.finish({ ok: false, error: new EndpointClosedError() });
    this.charged.clear();
    this.blockedCalls.clear();
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
    if (this.closed) return;
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
    if (this.blockedCalls.size > 0 && !this.retryTimer && !this.closed) {
      this.retryTimer = setTimeout(() => this.retry(), this.retryDelay);
    }
  }

  private recharge(): void {
    while (!this.closed && this.charged.size < this.backlog && !this.chargeTimer) {
      const id = this.nextId++;
      try {
        this.raw.chargeAccept(id);
      } catch (err) {
        // The pool stays short until the kernel takes charges again: try
        // again on a backing-off timer rather than lose the server.
        this.stats.chargeFailures++;
        if (this.chargeDelay === CHARGE_RETRY_MIN_MS) emitError(this, err as Error);
        this.chargeTimer = setTimeout(() => {
          this.chargeTimer = undefined;
          this.recharge();
        }, this.chargeDelay);
        this.chargeTimer.unref();
        this.chargeDelay = Math.min(this.chargeDelay * 2, CHARGE_RETRY_MAX_MS);
        return;
      }
      this.chargeDelay = CHARGE_RETRY_MIN_MS;
      this.charged.set(id, true);
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
      if (m.kind === 'malformed') {
        // A new call whose first message cannot be read: nobody is told of
        // a call they never saw, but the kernel must end it.
        this.stats.malformedMessages++;
        if (!m.end) call.sendAbort(RX_USER_ABORT);
        call.finish({ ok: false, error: m.error! });
        emitError(this, m.error!);
        return;
      }
      this.emit('call', call);
      if (call.isDone) return;
    }
    switch (m.kind) {
      case 'data':
        if (call.role === 'client') call.service = m.service;
        call.deliver(m.data, m.more);
        // MSG_EOR on data ends a client call: the reply is complete.
        if (call.role === 'client' && m.end) call.finish(OK);
        else call.flush();
        return;
      case 'ack':
        call.finish(OK);
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
      case 'malformed':
        // The call cannot go on: what the kernel said about it is unknown.
        this.stats.malformedMessages++;
        if (m.end) call.finish({ ok: false, error: m.error! });
        else call.abort(RX_USER_ABORT, m.error);
        return;
      default:
        return;
    }
  }
}
