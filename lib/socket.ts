/**
 * RawSocket: the native socket with typed arguments, encoded addresses and
 * control messages, and one decoded 'message' event per recvmsg. It keeps no
 * per-call state; call ids, queues and timeouts belong to the layers above.
 */
import { EventEmitter } from 'node:events';
import {
  AF_INET, AF_INET6, MSG_CTRUNC, MSG_EOR, MSG_MORE, MSG_OOB, RXRPC_EXCLUSIVE_CONNECTION, RXRPC_MANAGE_RESPONSE,
  RXRPC_MIN_SECURITY_LEVEL, RXRPC_SECURITY_KEY, RXRPC_SECURITY_KEYRING, RXRPC_SUPPORTED_CMSG, RXRPC_UPGRADEABLE_SERVICE,
  SO_RCVBUF, SO_SNDBUF, SOL_RXRPC, SOL_SOCKET,
} from './constants';
import {
  decodeControlAt, decodeSockaddr, encodeControl, encodeSockaddr, findCallId, MessageKind, OobInfo, RxAddress,
  SendControl,
} from './codec';
import { encodeOobControl } from './security/rxgk';
import {
  checkBytes, checkObject, emitError, InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError,
} from './errors';
import {
  EAGAIN, loadNative, NativeBinding, NativeSocket, RECORD_CONTROL_LENGTH, RECORD_DATA_LENGTH,
  RECORD_DATA_OFFSET, RECORD_FLAGS, RECORD_NAME_LENGTH,
} from './native';
import { closeRacesConnectionTimer } from './kernel';
import { checkBoolean } from './services';
import { IdTable } from './idtable';

export type TransportFamily = 'IPv4' | 'IPv6';

export interface RawSocketOptions {
  /** Transport family of the socket: 'IPv6' sockets also reach IPv4 peers. Default 'IPv4'. */
  family?: TransportFamily;
  /** Messages read per event-loop wakeup. Default 64. */
  batch?: number;
  /** Bytes of call data read per wakeup at most. Default 256 KiB. */
  batchBytes?: number;
  /** @internal The native binding (tests pass a fake). */
  binding?: NativeBinding;
  /** @internal Whether close() lingers after a call's end (default: closeRacesConnectionTimer() for the real addon, false with `binding`). */
  closeLinger?: boolean;
}

/** One recvmsg, decoded. */
export interface ReceivedMessage {
  callId: number;
  /** 'malformed': the kernel's message could not be decoded (see `error`); its call cannot go on. */
  kind: MessageKind | 'malformed';
  /** Abort code (signed) for 'abort'; errno for 'net-error' and 'local-error'. */
  code: number;
  /** Call data; empty for most terminal messages. Valid after the event. */
  data: Buffer;
  /** MSG_EOR: the call is complete and its id released (a client's last reply data, or a terminal message). */
  end: boolean;
  /** MSG_MORE: more data of this phase follows. Clear on the last data of a phase. */
  more: boolean;
  /** Service ID from msg_name: the service that answered (client) or was called (server). */
  service: number;
  /** Transport address of the peer. */
  peer: { family: TransportFamily; address: string; port: number };
  /** Control message types present but not understood. */
  unknown: number[];
  /** Out-of-band messages ('challenge', 'responded'): their id and content. They have no call and no peer address. */
  oob?: OobInfo;
  /** For 'malformed': what could not be decoded. */
  error?: MalformedError;
}

export interface SendOptions {
  /** Target of a new client call. */
  target?: RxAddress;
  /** MSG_MORE: more data for this call follows. */
  more?: boolean;
}

/**
 * A sendmsg handed to a thread of the socket (sendStart, sendBlocking). The
 * bytes were copied when it was handed over: the caller's buffer is free at once.
 */
export interface ThreadSend {
  /** The bytes the kernel took; rejects with the system error when it took none. */
  readonly sent: Promise<number>;
  /** Once `sent` has settled: the bytes the kernel did not take, if any (the thread's own copy). */
  readonly rest: Buffer | undefined;
  /**
   * Ends the send early: a queued send at once, one sleeping in the kernel by
   * waking it. `sent` then settles with what was taken (EINTR when nothing
   * was). False when there was nothing to interrupt, or it could not be woken.
   */
  interrupt(): boolean;
}

/** A send in progress on a bulk thread (RawSocket.sendBlocking). */
export type BlockingSend = ThreadSend;

interface RawSocketEvents {
  message: [ReceivedMessage];
  error: [Error];
  close: [];
}

const EMPTY = Buffer.alloc(0);
// Out-of-band messages come without msg_name.
const NO_PEER: ReceivedMessage['peer'] = Object.freeze({ family: 'IPv4', address: '', port: 0 });

/**
 * @internal Completion of a send handed to a thread (RawSocket.submit):
 * `error` when the kernel took nothing (EAGAIN is not an error: `sent` is
 * then -EAGAIN), `rest` the thread's copy of what it did not take.
 */
export type SubmitDone = (sent: number, error: Error | undefined, rest: Buffer | undefined) => void;

const SOCKADDR_SIZE = 36;
/** Encoded targets kept per socket at most (a client calls the same few peers again and again). */
const TARGET_CACHE_MAX = 1024;
const CMSG_CALL_ID = 24; // one control message: a 16-byte header and the 8-byte call id
const MAX_CALL_ID = Number.MAX_SAFE_INTEGER;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/**
 * How long after its last call ended a client socket's descriptor stays open
 * once closed, where the kernel needs it (closeRacesConnectionTimer): the final
 * ACK is due two jiffies after the call, 20 ms at HZ=100, 8 ms at Debian's 250.
 */
const CLOSE_LINGER_MS = 50;
let lingerNeeded: boolean | undefined;

function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function socketClosed(): Error {
  const err = new Error('Socket is closed') as Error & { code: string };
  err.code = 'ERR_SOCKET_CLOSED';
  return err;
}

/** The longest key or keyring description the kernel takes: PAGE_SIZE - 1 bytes (net/rxrpc/key.c, server_key.c). */
const DESCRIPTION_MAX = 4095;

/** A key or keyring description: what the kernel would refuse with a bare EINVAL is refused here, by name. */
function checkDescription(argument: string, value: unknown): Buffer {
  if (typeof value !== 'string') throw new InvalidArgTypeError(argument, 'of type string', value);
  if (value.length === 0 || value.includes('\0')) {
    throw new InvalidArgValueError(argument, 'must be a non-empty string without NUL characters', value);
  }
  const bytes = Buffer.from(value);
  if (bytes.length > DESCRIPTION_MAX) {
    throw new OutOfRangeError(argument, `at most ${DESCRIPTION_MAX} bytes long in UTF-8 (it is ${bytes.length})`, value);
  }
  return bytes;
}

function checkInt(argument: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(argument, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(argument, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** A flag left out or false (what the reused control buffers stand for). */
const unset = (flag: unknown) => flag === undefined || flag === false;

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

export class RawSocket extends EventEmitter<RawSocketEvents> {
  readonly family: TransportFamily;
  private readonly native: NativeSocket;
  private readonly meta: Uint8Array;
  private readonly metaView: DataView;
  private readonly recordSize: number;
  private readonly nameOffset: number;
  private readonly controlOffset: number;
  private readonly controlSize: number;
  private readonly nameSize: number;
  private readonly pendingAsync = new IdTable<SubmitDone>();
  private readonly metaBuffer: Buffer;
  /** Encoded sendmsg targets by address, then by port * 65536 + service. */
  private readonly targets = new Map<string, Map<number, Buffer>>();
  private targetCount = 0;
  /**
   * Control buffers for the two common sends, filled in place for each one:
   * a call id alone, and a call id with RXRPC_CHARGE_ACCEPT. Reusing them is
   * safe because the kernel (send) or the addon (sendmsgAsync, which copies
   * what it hands to a thread) is done with the bytes when the call returns.
   */
  private readonly controlCallId: Buffer | undefined;
  private readonly controlCharge: Buffer | undefined;
  private nextToken = 1;
  private closed = false;
  /** Bound to a service (a server's socket): its descriptor is closed at once, so its port can be bound again. */
  private boundToService = false;
  /** performance.now() of the last message that ended a call. */
  private lastCallEnd = -Infinity;
  private readonly closeLinger: boolean | undefined;
  private readonly lastName = Buffer.alloc(SOCKADDR_SIZE);
  private lastNameLength = -1;
  private lastPeer: ReceivedMessage['peer'] | undefined;

  constructor(options: RawSocketOptions = {}) {
    super();
    checkObject(options, 'options');
    // Left out means the default; null is not left out.
    const family = options.family === undefined ? 'IPv4' : options.family;
    if (family !== 'IPv4' && family !== 'IPv6') {
      throw new InvalidArgValueError('family', "must be 'IPv4' or 'IPv6'", family);
    }
    const batch = checkInt('batch', options.batch === undefined ? 64 : options.batch, 1, 1024);
    const batchBytes = checkInt('batchBytes', options.batchBytes === undefined ? 256 * 1024 : options.batchBytes,
      32 * 1024, 64 * 1024 * 1024);
    if (options.binding !== undefined && (typeof options.binding !== 'object' || options.binding === null)) {
      throw new InvalidArgTypeError('binding', 'a native binding', options.binding);
    }
    const binding = options.binding ?? loadNative();
    // A binding passed in (the tests' fake kernel) is no kernel with the race: no linger unless asked for.
    this.closeLinger = options.closeLinger === undefined ? (options.binding ? false : undefined)
      : checkBoolean(options.closeLinger, 'closeLinger');
    this.family = family;
    this.recordSize = binding.RECORD_SIZE;
    this.nameOffset = binding.RECORD_NAME;
    this.controlOffset = binding.RECORD_CONTROL;
    this.controlSize = binding.RECORD_CONTROL_SIZE;
    this.nameSize = binding.RECORD_NAME_SIZE;
    this.meta = new Uint8Array(batch * this.recordSize);
    this.metaView = new DataView(this.meta.buffer);
    this.metaBuffer = Buffer.from(this.meta.buffer, this.meta.byteOffset, this.meta.length);
    if (LITTLE_ENDIAN) {
      this.controlCallId = encodeControl({ callId: 0 });
      this.controlCharge = encodeControl({ callId: 0, chargeAccept: true });
    }
    this.native = new binding.Socket(
      family === 'IPv4' ? AF_INET : AF_INET6,
      this.meta,
      (count, data, error) => this.onRecv(count, data, error),
      (token, result, error, rest) => this.onSendDone(token, result, error, rest),
      batchBytes,
    );
  }

  /** Binds a service to a transport address; a server may bind twice (two services, one address). */
  bind(address: RxAddress): void {
    this.native.bind(encodeSockaddr(address));
    if (address.service !== 0) this.boundToService = true;
  }

  /** Starts taking calls; backlog is the number of accept charges the kernel allows. */
  listen(backlog: number): void {
    this.native.listen(checkInt('backlog', backlog, 0, 0x7fffffff));
  }

  /** RXRPC_SECURITY_KEY: the key (by description) client calls use. Before bind. */
  setSecurityKey(description: string): void {
    this.native.setsockopt(SOL_RXRPC, RXRPC_SECURITY_KEY, checkDescription('description', description));
  }

  /** RXRPC_SECURITY_KEYRING: the keyring of server keys. Before bind. */
  setSecurityKeyring(description: string): void {
    this.native.setsockopt(SOL_RXRPC, RXRPC_SECURITY_KEYRING, checkDescription('description', description));
  }

  /** RXRPC_EXCLUSIVE_CONNECTION: every client call gets a connection of its own. Before bind. */
  setExclusiveConnection(): void {
    this.native.setsockopt(SOL_RXRPC, RXRPC_EXCLUSIVE_CONNECTION, null);
  }

  /** RXRPC_MIN_SECURITY_LEVEL: 0 plain, 1 authenticated, 2 encrypted. Before bind. */
  setMinSecurityLevel(level: number): void {
    this.native.setsockopt(SOL_RXRPC, RXRPC_MIN_SECURITY_LEVEL, u32(checkInt('level', level, 0, 2)));
  }

  /** RXRPC_UPGRADEABLE_SERVICE: after binding both services, before listen. */
  setUpgradeableService(from: number, to: number): void {
    const value = Buffer.alloc(4);
    value.writeUInt16LE(checkInt('from', from, 1, 0xffff), 0);
    value.writeUInt16LE(checkInt('to', to, 1, 0xffff), 2);
    this.native.setsockopt(SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, value);
  }

  /**
   * RXRPC_MANAGE_RESPONSE (about 6.16 on; before bind): challenges of security
   * classes that hand them to user space (RxGK) arrive as 'challenge' messages.
   * Older kernels accept it silently and ignore it.
   */
  setManageResponse(on: boolean): void {
    if (typeof on !== 'boolean') throw new InvalidArgTypeError('on', 'of type boolean', on);
    this.native.setsockopt(SOL_RXRPC, RXRPC_MANAGE_RESPONSE, u32(on ? 1 : 0));
  }

  /** Answers a challenge (sendmsg MSG_OOB with RXRPC_RESPOND), with RxGK appdata if given. */
  respondToChallenge(oobId: bigint, appData?: Uint8Array): void {
    if (this.closed) throw socketClosed();
    this.native.sendmsg(null, encodeOobControl({ oobId, appData }), null, MSG_OOB);
  }

  /** Refuses a challenge: the kernel aborts the connection with `code`. */
  rejectChallenge(oobId: bigint, code: number): void {
    if (this.closed) throw socketClosed();
    this.native.sendmsg(null, encodeOobControl({ oobId, abort: code }), null, MSG_OOB);
  }

  /** RXRPC_SUPPORTED_CMSG: the highest control message type this kernel knows. */
  supportedCmsg(): number {
    return this.native.getsockopt(SOL_RXRPC, RXRPC_SUPPORTED_CMSG, 4).readInt32LE(0);
  }

  /** SO_SNDBUF as the kernel reports it (it doubles what is set). */
  get sendBufferSize(): number {
    return this.native.getsockopt(SOL_SOCKET, SO_SNDBUF, 4).readInt32LE(0);
  }

  set sendBufferSize(size: number) {
    this.native.setsockopt(SOL_SOCKET, SO_SNDBUF, u32(checkInt('size', size, 1, 0x7fffffff)));
  }

  /** SO_RCVBUF as the kernel reports it (it doubles what is set). */
  get receiveBufferSize(): number {
    return this.native.getsockopt(SOL_SOCKET, SO_RCVBUF, 4).readInt32LE(0);
  }

  set receiveBufferSize(size: number) {
    this.native.setsockopt(SOL_SOCKET, SO_RCVBUF, u32(checkInt('size', size, 1, 0x7fffffff)));
  }

  /**
   * One sendmsg, on this thread, never sleeping: the bytes the kernel took,
   * or -EAGAIN when it took none. Not for the first send of a client call
   * (see sendAsync). Other failures throw errors with code, errno, syscall.
   */
  send(control: SendControl, data?: Uint8Array, options: SendOptions = {}): number {
    if (this.closed) throw socketClosed();
    checkObject(options, 'options');
    if (data !== undefined && data !== null) checkBytes(data, 'data');
    const more = checkBoolean(options.more, 'options.more');
    return this.native.sendmsg(
      options.target === undefined ? null : this.targetOf(options.target, 'options.target'),
      this.controlOf(control),
      data ?? null,
      more ? MSG_MORE : 0,
    );
  }

  /**
   * @internal send() of call data for the layers above, without the control
   * and options objects: `data` must already be checked bytes and `callId` a
   * call id the layer made. The same result and errors as send().
   */
  sendData(callId: number, data: Uint8Array, more: boolean): number {
    if (this.closed) throw socketClosed();
    return this.native.sendmsg(null, this.callIdControl(this.controlCallId, callId, false), data, more ? MSG_MORE : 0);
  }

  /** @internal send({ callId, chargeAccept: true }) for the layers above, without the control object. */
  chargeAccept(callId: number): number {
    if (this.closed) throw socketClosed();
    return this.native.sendmsg(null, this.callIdControl(this.controlCharge, callId, true), null, 0);
  }

  /** The control buffer of a call id (and charge): `scratch` rewritten, or a new one where there is none (big-endian hosts). */
  private callIdControl(scratch: Buffer | undefined, callId: number, chargeAccept: boolean): Buffer {
    if (scratch === undefined) return encodeControl({ callId, chargeAccept });
    scratch.writeUInt32LE(callId % 0x100000000, 16);
    scratch.writeUInt32LE(Math.floor(callId / 0x100000000), 20);
    return scratch;
  }

  /**
   * The encoded sockaddr of a target, from the socket's cache when it was
   * seen before (only well-typed values are looked up; anything else goes
   * through encodeSockaddr, which checks it and throws, naming `argument`).
   * Not to be changed: the same buffer serves every send to that target.
   */
  private targetOf(target: RxAddress, argument: string): Buffer {
    if (typeof target === 'object' && target !== null && typeof target.address === 'string' &&
        isPort(target.port) && isPort(target.service)) {
      let byPort = this.targets.get(target.address);
      const key = target.port * 0x10000 + target.service;
      const hit = byPort?.get(key);
      if (hit) return hit;
      const encoded = encodeSockaddr(target, argument);
      if (this.targetCount >= TARGET_CACHE_MAX) {
        this.targets.clear();
        this.targetCount = 0;
        byPort = undefined;
      }
      if (!byPort) this.targets.set(target.address, (byPort = new Map()));
      byPort.set(key, encoded);
      this.targetCount++;
      return encoded;
    }
    return encodeSockaddr(target, argument);
  }

  /**
   * The control buffer of one send: a reused one for the common cases (see
   * controlCallId), encodeControl otherwise. Only flags that are left out or
   * booleans take the reused buffers; anything else goes to encodeControl,
   * which refuses it.
   */
  private controlOf(control: SendControl): Buffer {
    const scratch = this.controlCallId;
    if (scratch && typeof control === 'object' && control !== null && control.abort === undefined && unset(control.exclusive) &&
        unset(control.upgrade) && control.txLength === undefined && control.timeouts === undefined &&
        (control.chargeAccept === true || unset(control.chargeAccept))) {
      const id = control.callId;
      if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_CALL_ID) {
        return control.chargeAccept === true ? this.callIdControl(this.controlCharge, id, true) : this.callIdControl(scratch, id, false);
      }
    }
    return encodeControl(control);
  }

  /** The same sendmsg made on a starter thread of the socket, where it may sleep (a first send). Bad arguments reject. */
  sendAsync(control: SendControl, data?: Uint8Array, options: SendOptions = {}): Promise<number> {
    try {
      return this.sendStart(control, data, options).sent;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * sendAsync with a handle: the first send of a client call on a starter
   * thread (one destination per thread at a time, so a send asleep waiting
   * for a channel to one peer holds up no other), interruptible.
   */
  sendStart(control: SendControl, data?: Uint8Array, options: SendOptions = {}): ThreadSend {
    return this.handOff(control, data, options, false);
  }

  /**
   * Data sent on a bulk thread that sleeps in sendmsg until the kernel has
   * taken all of it (the kernel wakes a sleeping sender when the call's
   * transmit window opens; it has no other signal for it). `sent` resolves
   * with the bytes taken: fewer after interrupt(), which ends the sleep.
   * While it runs, nothing else should be sent on the call from this thread:
   * the kernel may hold the call locked while it copies data.
   */
  sendBlocking(control: SendControl, data: Uint8Array, options: SendOptions = {}): ThreadSend {
    checkBytes(data, 'data');
    const handle = this.handOff(control, data, options, true);
    const sent = handle.sent.then(
      // EAGAIN: the kernel took nothing without sleeping (it can, e.g. when the call ends).
      (n) => Math.max(n, 0),
      // Interrupted before it took anything: nothing was sent.
      (err: Error) => {
        if ((err as { code?: string }).code === 'EINTR') return 0;
        throw err;
      },
    );
    return { sent, get rest() { return handle.rest; }, interrupt: () => handle.interrupt() };
  }

  /** Encodes and hands one sendmsg to a thread of the socket (encoding errors throw here). */
  private handOff(control: SendControl, data: Uint8Array | undefined, options: SendOptions, blocking: boolean): ThreadSend {
    if (this.closed) {
      const sent = Promise.reject(socketClosed());
      sent.catch(() => {});
      return { sent, rest: undefined, interrupt: () => false };
    }
    checkObject(options, 'options');
    const more = checkBoolean(options.more, 'options.more') === true;
    const handle = { rest: undefined as Buffer | undefined };
    let resolve!: (n: number) => void;
    let reject!: (e: Error) => void;
    const sent = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const token = this.submit(control, data, options.target, more, blocking, (n, error, rest) => {
      handle.rest = rest;
      if (error) reject(error);
      else resolve(n);
    }, 'options.target');
    return {
      sent,
      get rest() { return handle.rest; },
      interrupt: () => this.interruptSend(token),
    };
  }

  /**
   * @internal handOff without promises, for the layers above: hands one
   * sendmsg to a starter thread (a first send, `blocking` false) or a bulk
   * thread, and returns its token. `done` follows once, from the event loop,
   * unless the socket closes first (then it gets ERR_SOCKET_CLOSED).
   * Encoding errors throw here; nothing is sent then.
   */
  submit(control: SendControl, data: Uint8Array | undefined, target: RxAddress | undefined, more: boolean,
    blocking: boolean, done: SubmitDone, targetArgument = 'target'): number {
    if (this.closed) throw socketClosed();
    if (data !== undefined && data !== null) checkBytes(data, 'data');
    // A target that is given must be an address: null is not "none".
    const name = target === undefined ? null : this.targetOf(target, targetArgument);
    const ctl = this.controlOf(control);
    const token = this.nextToken++;
    this.native.sendmsgAsync(token, name, ctl, data ?? null, more ? MSG_MORE : 0, blocking);
    this.pendingAsync.set(token, done);
    return token;
  }

  /** @internal interrupt() of a submitted send: false when it is over, or could not be woken */
  interruptSend(token: number): boolean {
    return !this.closed && this.pendingAsync.has(token) && this.native.interrupt(token);
  }

  /** Closes the socket; pending sendAsync promises reject with ERR_SOCKET_CLOSED. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const native = this.native;
    const closeNative = () => {
      if (native.close() === false) {
        process.emitWarning('rxrpc: a send thread did not leave the kernel when the socket closed; ' +
          'its descriptor is closed when it does', { code: 'RXRPC_SEND_THREAD_STUCK' });
      }
    };
    const since = performance.now() - this.lastCallEnd;
    if (since < CLOSE_LINGER_MS && !this.boundToService && this.pendingAsync.size === 0 &&
        (this.closeLinger ?? (lingerNeeded ??= closeRacesConnectionTimer()))) {
      // A call ended a moment ago, and this may be its local endpoint's last
      // socket: the descriptor stays open (nothing more is read or sent) until
      // the connection's final ACK has gone, and the timer keeps the process
      // alive that long.
      setTimeout(closeNative, Math.ceil(CLOSE_LINGER_MS - since));
    } else {
      closeNative();
    }
    const pending = this.pendingAsync.values();
    this.pendingAsync.clear();
    for (const done of pending) done(-1, socketClosed(), undefined);
    process.nextTick(() => this.emit('close'));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Keeps the event loop alive while the socket is open (the default). */
  ref(): this {
    if (!this.closed) this.native.ref();
    return this;
  }

  /** Lets the process exit while the socket is open and idle. */
  unref(): this {
    if (!this.closed) this.native.unref();
    return this;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private onSendDone(token: number, result: number, error: Error | undefined, rest: Buffer | undefined): void {
    const done = this.pendingAsync.get(token);
    if (!done) return;
    this.pendingAsync.delete(token);
    if (error && result !== -EAGAIN) done(result, error, rest);
    else done(result, undefined, rest);
  }

  private onRecv(count: number, data: Buffer | undefined, error: Error | undefined): void {
    const view = this.metaView;
    const all = data ?? EMPTY;
    for (let i = 0; i < count && !this.closed; i++) {
      const rec = i * this.recordSize;
      const flags = view.getInt32(rec + RECORD_FLAGS, true);
      const offset = view.getInt32(rec + RECORD_DATA_OFFSET, true);
      const length = view.getInt32(rec + RECORD_DATA_LENGTH, true);
      const nameLength = view.getInt32(rec + RECORD_NAME_LENGTH, true);
      const controlLength = view.getInt32(rec + RECORD_CONTROL_LENGTH, true);
      const controlStart = rec + this.controlOffset;
      let message: ReceivedMessage;
      try {
        if (flags & MSG_CTRUNC) {
          throw new MalformedError('control messages', 'truncated by the kernel (MSG_CTRUNC)');
        }
        if (nameLength > this.nameSize || nameLength < 0) {
          throw new MalformedError('sockaddr_rxrpc', `msg_namelen ${nameLength} exceeds the ${this.nameSize} bytes given`);
        }
        if (offset < 0 || length < 0 || offset + length > all.length) {
          throw new MalformedError('message record', `data ${offset}+${length} outside the ${all.length}-byte batch`);
        }
        if (controlLength > this.controlSize || controlLength < 0) {
          throw new MalformedError('control messages', `length ${controlLength} exceeds the ${this.controlSize} bytes given`);
        }
        const ctl = decodeControlAt(view, controlStart, controlLength);
        const nameStart = rec + this.nameOffset;
        const peer = ctl.oob && nameLength === 0 ? NO_PEER : this.peerOf(nameStart, nameLength);
        message = {
          callId: ctl.callId,
          kind: ctl.kind,
          code: ctl.code,
          data: length === 0 ? EMPTY : all.subarray(offset, offset + length),
          end: (flags & MSG_EOR) !== 0,
          more: (flags & MSG_MORE) !== 0,
          service: nameLength >= 4 ? this.meta[nameStart + 2] | (this.meta[nameStart + 3] << 8) : 0,
          peer,
          unknown: ctl.unknown,
        };
        if (ctl.oob) message.oob = ctl.oob;
      } catch (err) {
        const malformed = err instanceof MalformedError ? err : new MalformedError('message', String(err));
        // The call it belongs to, when its id can still be read, must hear of it.
        const control = this.meta.subarray(controlStart, controlStart + this.controlSize);
        const callId = findCallId(control, Math.min(Math.max(controlLength, 0), control.length));
        if (callId === undefined) {
          emitError(this, malformed);
          continue;
        }
        message = {
          callId, kind: 'malformed', code: 0, data: EMPTY, end: (flags & MSG_EOR) !== 0, more: false, service: 0,
          peer: { family: this.family, address: '', port: 0 }, unknown: [], error: malformed,
        };
      }
      if (message.end) this.lastCallEnd = performance.now();
      this.emit('message', message);
    }
    if (error && !this.closed) emitError(this, error);
  }

  // Consecutive messages mostly come from one peer: decode its address once.
  // The service (bytes 2-3) is not part of the peer: calls to both services
  // of a server share the decoded address.
  private peerOf(start: number, length: number): ReceivedMessage['peer'] {
    const last = this.lastPeer;
    if (last && length === this.lastNameLength && length >= 4 &&
        this.metaBuffer.compare(this.lastName, 4, length, start + 4, start + length) === 0 &&
        this.metaBuffer[start] === this.lastName[0] && this.metaBuffer[start + 1] === this.lastName[1]) {
      return last;
    }
    const d = decodeSockaddr(this.meta.subarray(start, start + length));
    this.metaBuffer.copy(this.lastName, 0, start, start + length);
    this.lastNameLength = length;
    this.lastPeer = { family: d.family, address: d.address, port: d.port };
    return this.lastPeer;
  }
}
