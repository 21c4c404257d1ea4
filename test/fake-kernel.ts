/**
 * A fake AF_RXRPC for host-side tests of the policy above the native layer.
 * It implements the NativeBinding interface with the same record layout as
 * native/rxrpc.cc, and routes client calls to scripted peers registered by
 * transport address. Every sendmsg is logged, so tests can check what left
 * and in which order.
 */
import { decodeSockaddr, encodeSockaddr, SOCKADDR_RXRPC_SIZE } from '../lib/codec';
import { MSG_EOR, MSG_MORE, RXRPC_ABORT, RXRPC_CHARGE_ACCEPT, RXRPC_EXCLUSIVE_CALL, RXRPC_UPGRADE_SERVICE, RXRPC_USER_CALL_ID, SOL_RXRPC } from '../lib/constants';
import { NativeBinding, NativeSocket, RecvBatch, SendDone } from '../lib/native';
import { IdTable } from '../lib/idtable';

const RECORD_SIZE = 192;
const RECORD_NAME = 20;
const RECORD_CONTROL = 56;

/** What a scripted peer does with a complete request. */
export type PeerAnswer =
  | { reply: Uint8Array; service?: number; delay?: number }
  | { abort: number; delay?: number }
  | { silent: true };

export interface FakeRequest {
  service: number;
  upgrade: boolean;
  exclusive: boolean;
  data: Buffer;
}

export type Peer = (request: FakeRequest) => PeerAnswer;

/** One sendmsg as the fake kernel saw it. */
export interface SentRecord {
  socket: number;
  callId: number;
  target?: { service: number; address: string; port: number };
  upgrade: boolean;
  exclusive: boolean;
  abort?: number;
  bytes: number;
  more: boolean;
  /** Made on a bulk thread (a sleeping sendmsg). */
  blocking: boolean;
  at: number;
}

interface FakeCall {
  socket: FakeSocket;
  callId: number;
  target: { service: number; address: string; port: number };
  upgrade: boolean;
  exclusive: boolean;
  chunks: Buffer[];
  done: boolean;
  /** A call to a listening socket: what it sends is its reply. */
  server?: boolean;
}

function parseControl(control: Uint8Array | null) {
  const out = { callId: -1, upgrade: false, exclusive: false, charge: false, abort: undefined as number | undefined };
  if (!control) return out;
  const b = Buffer.from(control.buffer, control.byteOffset, control.length);
  for (let off = 0; off + 16 <= b.length; ) {
    const len = Number(b.readBigUInt64LE(off));
    const level = b.readInt32LE(off + 8);
    const type = b.readInt32LE(off + 12);
    if (level === SOL_RXRPC) {
      if (type === RXRPC_USER_CALL_ID) out.callId = Number(b.readBigUInt64LE(off + 16));
      if (type === RXRPC_UPGRADE_SERVICE) out.upgrade = true;
      if (type === RXRPC_EXCLUSIVE_CALL) out.exclusive = true;
      if (type === RXRPC_CHARGE_ACCEPT) out.charge = true;
      if (type === RXRPC_ABORT) out.abort = b.readInt32LE(off + 16);
    }
    off += (len + 7) & ~7;
  }
  return out;
}

export function cmsg(type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const len = 16 + data.length;
  const b = Buffer.alloc((len + 7) & ~7);
  b.writeBigUInt64LE(BigInt(len), 0);
  b.writeInt32LE(SOL_RXRPC, 8);
  b.writeInt32LE(type, 12);
  data.copy(b, 16);
  return b;
}

export class FakeKernel {
  readonly peers = new Map<string, Peer>();
  readonly sent: SentRecord[] = [];
  /** Sends and deliveries in the order they happened. */
  readonly log: string[] = [];
  readonly sockets: FakeSocket[] = [];
  /** When set, the first sendmsg of each new call waits this many ms on the "sender thread". */
  startDelay = 0;
  /**
   * For profiling the library (scripts/bench/profile.ts): answers and thread
   * completions without a delay follow on setImmediate instead of a 1 ms
   * timer, and answered calls are forgotten, so the fake costs little and
   * holds nothing per call. Off in the tests.
   */
  immediate = false;
  /** When set, a non-blocking sendmsg of an existing call takes at most this many bytes (0: EAGAIN). */
  window: number | undefined;
  /** A blocking sendmsg (bulk thread) takes everything after this many ms, or half of it when interrupted. */
  bulkDelay = 5;
  /**
   * When set, the next first send fails with this errno (the call is made in
   * the kernel all the same) and, with `abort`, a terminal ABORT for it follows.
   */
  failStart: { code: string; errno: number; abort?: number } | undefined;
  /** Bytes an interrupted blocking sendmsg took. */
  interruptTakes = 0;
  /** When set, a first send takes at most this many bytes (the transmit window cut it short). */
  startTakes: number | undefined;
  /** Peers ("address|port") to which a first send sleeps until interrupted (waiting for a channel). */
  readonly startHangs = new Set<string>();
  private socketIds = 0;

  /** Registers a scripted peer at a transport address. */
  peer(address: string, port: number, peer: Peer): void {
    this.peers.set(`${address}|${port}`, peer);
  }

  /** The NativeBinding to hand to Client/Endpoint/RawSocket. */
  get binding(): NativeBinding {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const kernel = this;
    return {
      Socket: class extends FakeSocket {
        constructor(family: number, meta: Uint8Array, onRecv: RecvBatch, onSendDone: SendDone) {
          super(kernel, ++kernel.socketIds, family, meta, onRecv, onSendDone);
          kernel.sockets.push(this);
        }
      },
      RECORD_SIZE,
      RECORD_NAME,
      RECORD_NAME_SIZE: SOCKADDR_RXRPC_SIZE,
      RECORD_CONTROL,
      RECORD_CONTROL_SIZE: 136,
    };
  }

  /**
   * A peer calls a listening socket: the whole request arrives for `callId`
   * (an accept charge). Returns what the socket sent back for it so far.
   */
  callServer(socket: FakeSocket, callId: number, request: Buffer, service: number): Buffer[] {
    const from = { service, address: '10.0.0.9', port: 7001 };
    const call: FakeCall = { socket, callId, target: from, upgrade: false, exclusive: false, chunks: [], done: false, server: true };
    socket.calls.delete(callId);
    socket.calls.set(callId, call);
    const id = Buffer.alloc(8);
    id.writeBigUInt64LE(BigInt(callId));
    socket.deliver(request, 0, encodeSockaddr(from), cmsg(RXRPC_USER_CALL_ID, id));
    return call.chunks;
  }

  /** @internal */
  callIdOf(control: Uint8Array | null): number {
    return parseControl(control).callId;
  }

  /** Calls that reached a peer, in order. */
  get requests(): SentRecord[] {
    return this.sent.filter((s) => s.target);
  }

  /** @internal */
  send(socket: FakeSocket, name: Uint8Array | null, control: Uint8Array | null, data: Uint8Array | null, flags: number,
    blocking = false): number {
    const ctl = parseControl(control);
    let more = (flags & MSG_MORE) !== 0;
    if (data && !name && !blocking && this.window !== undefined && data.length > this.window) {
      if (this.window === 0) return -11; // EAGAIN
      data = data.subarray(0, this.window);
      more = true;
    }
    const bytes = data ? data.length : 0;
    const target = name ? decodeSockaddr(name) : undefined;
    this.sent.push({
      socket: socket.id, callId: ctl.callId, upgrade: ctl.upgrade, exclusive: ctl.exclusive, abort: ctl.abort, bytes, more, blocking,
      at: Date.now(), ...(target ? { target: { service: target.service, address: target.address, port: target.port } } : {}),
    });
    this.log.push(`send ${target ? `${target.address}:${target.port}/${target.service}` : '-'} call ${socket.id}/${ctl.callId}${ctl.upgrade ? ' upgrade' : ''}${ctl.abort !== undefined ? ` abort ${ctl.abort}` : ''}`);
    if (ctl.charge) return 0;
    let call = socket.calls.get(ctl.callId);
    if (ctl.abort !== undefined) {
      if (call) call.done = true;
      return 0;
    }
    if (!call) {
      if (!target) throw Object.assign(new Error('sendmsg EBADSLT'), { code: 'EBADSLT', errno: -57, syscall: 'sendmsg' });
      call = { socket, callId: ctl.callId, target, upgrade: ctl.upgrade, exclusive: ctl.exclusive, chunks: [], done: false };
      socket.calls.set(ctl.callId, call);
    }
    if (data) call.chunks.push(Buffer.from(data));
    if (!more && !call.server) this.answer(call);
    if (!more && call.server && this.immediate) socket.calls.delete(ctl.callId); // the reply is complete
    return bytes;
  }

  private answer(call: FakeCall): void {
    const peer = this.peers.get(`${call.target.address}|${call.target.port}`);
    const request: FakeRequest = { service: call.target.service, upgrade: call.upgrade, exclusive: call.exclusive, data: Buffer.concat(call.chunks) };
    const answer: PeerAnswer = peer ? peer(request) : { abort: -1 };
    if ('silent' in answer) return;
    const from = { service: 'reply' in answer ? answer.service ?? call.target.service : call.target.service, address: call.target.address, port: call.target.port };
    this.later(answer.delay ?? 0, () => {
      if (call.done || call.socket.closed) return;
      call.done = true;
      if (this.immediate) call.socket.calls.delete(call.callId);
      this.log.push(`answer call ${call.socket.id}/${call.callId}`);
      const id = Buffer.alloc(8);
      id.writeBigUInt64LE(BigInt(call.callId));
      if ('reply' in answer) {
        call.socket.deliver(Buffer.from(answer.reply), MSG_EOR, encodeSockaddr(from), cmsg(RXRPC_USER_CALL_ID, id));
      } else {
        const code = Buffer.alloc(4);
        code.writeInt32LE(answer.abort);
        call.socket.deliver(Buffer.alloc(0), MSG_EOR, encodeSockaddr(from), Buffer.concat([cmsg(RXRPC_USER_CALL_ID, id), cmsg(RXRPC_ABORT, code)]));
      }
    });
  }

  /** @internal runs `fn` after `ms` (see `immediate`) */
  later(ms: number, fn: () => void): NodeJS.Timeout | undefined {
    if (this.immediate && ms === 0) {
      setImmediate(fn);
      return undefined;
    }
    return setTimeout(fn, ms);
  }
}

export class FakeSocket implements NativeSocket {
  closed = false;
  refed = true;
  pendingAsync = 0;
  readonly fd = -1;
  bound: ReturnType<typeof decodeSockaddr>[] = [];

  constructor(
    private readonly kernel: FakeKernel,
    readonly id: number,
    readonly family: number,
    private readonly meta: Uint8Array,
    private readonly onRecv: RecvBatch,
    private readonly onSendDone: SendDone,
  ) {}

  bind(sockaddr: Uint8Array): void {
    this.bound.push(decodeSockaddr(sockaddr));
  }

  listen(): void {}

  setsockopt(): void {}

  getsockopt(level: number, name: number, size: number): Buffer {
    const b = Buffer.alloc(size);
    if (level === SOL_RXRPC && name === 6) b.writeInt32LE(14);
    return b;
  }

  sendmsg(name: Uint8Array | null, control: Uint8Array | null, data: Uint8Array | null, flags: number): number {
    if (this.closed) throw new Error('closed');
    return this.kernel.send(this, name, control, data, flags);
  }

  /** Blocking sends in progress, by token. */
  readonly bulk = new IdTable<{ timer: NodeJS.Timeout; finish: (taken: number) => void }>();
  /** First sends on a "starter thread" not yet completed, by token. */
  readonly starting = new IdTable<{ timer: NodeJS.Timeout | undefined; finish: (interrupted: boolean) => void }>();
  /** @internal the calls the kernel knows on this socket, by call ID (IdTables, as the library's: no Map churn to distort a profile) */
  readonly calls = new IdTable<FakeCall>();

  private done(token: number, result: number, error: Error | undefined, data: Uint8Array | null): void {
    // What the kernel did not take comes back as the thread's own copy, as the addon does.
    const taken = result > 0 ? result : 0;
    const rest = data && taken < data.length ? Buffer.from(data.subarray(taken)) : undefined;
    this.onSendDone(token, result, error, rest);
  }

  sendmsgAsync(token: number, name: Uint8Array | null, control: Uint8Array | null, data: Uint8Array | null, flags: number,
    blocking?: boolean): void {
    // The addon copies what it hands to a thread (name, control and data): so does the fake.
    data = data ? Buffer.from(data) : null;
    name = name ? Buffer.from(name) : null;
    control = control ? Buffer.from(control) : null;
    if (blocking) {
      this.pendingAsync++;
      const finish = (taken: number) => {
        clearTimeout(job.timer);
        this.bulk.delete(token);
        this.pendingAsync--;
        if (this.closed) return;
        if (data && data.length > 0 && taken === 0) {
          this.done(token, -4, Object.assign(new Error('sendmsg EINTR'), { code: 'EINTR', errno: -4, syscall: 'sendmsg' }), data);
          return;
        }
        const part = data ? data.subarray(0, taken) : null;
        try {
          this.done(token, this.kernel.send(this, name, control, part, data && taken < data.length ? flags | MSG_MORE : flags, true), undefined, data);
        } catch (err) {
          this.done(token, -1, err as Error, data);
        }
      };
      const job = { timer: setTimeout(() => finish(data ? data.length : 0), this.kernel.bulkDelay), finish };
      this.bulk.set(token, job);
      return;
    }
    this.pendingAsync++;
    const target = name ? decodeSockaddr(name) : undefined;
    const hangs = target !== undefined && this.kernel.startHangs.has(`${target.address}|${target.port}`);
    const finish = (interrupted: boolean) => {
      const job = this.starting.get(token);
      if (!job) return; // already finished (an interrupt raced an immediate completion)
      if (job?.timer) clearTimeout(job.timer);
      this.starting.delete(token);
      this.pendingAsync--;
      if (this.closed) return;
      if (interrupted) {
        this.kernel.log.push(`interrupted start ${token}`);
        this.done(token, -4, Object.assign(new Error('sendmsg EINTR'), { code: 'EINTR', errno: -4, syscall: 'sendmsg' }), data);
        return;
      }
      const fail = this.kernel.failStart;
      if (fail) {
        this.kernel.failStart = undefined;
        const callId = this.kernel.callIdOf(control);
        this.done(token, -fail.errno, Object.assign(new Error(`sendmsg ${fail.code}`), { code: fail.code, errno: -fail.errno, syscall: 'sendmsg' }), data);
        if (fail.abort !== undefined) setTimeout(() => this.deliverAbort(callId, fail.abort!), 5);
        return;
      }
      // A first send the transmit window cuts short takes only part of the data.
      const cut = this.kernel.startTakes;
      const part = data && cut !== undefined && data.length > cut ? data.subarray(0, cut) : data;
      try {
        this.done(token, this.kernel.send(this, name, control, part, part !== data ? flags | MSG_MORE : flags), undefined, data);
      } catch (err) {
        this.done(token, -1, err as Error, data);
      }
    };
    this.starting.set(token, { timer: hangs ? undefined : this.kernel.later(this.kernel.startDelay, () => finish(false)), finish });
  }

  interrupt(token: number): boolean {
    const start = this.starting.get(token);
    if (start) {
      this.kernel.log.push(`interrupt ${token}`);
      if (start.timer) clearTimeout(start.timer);
      start.timer = setTimeout(() => start.finish(true), 0);
      return true;
    }
    const job = this.bulk.get(token);
    if (!job) return false;
    this.kernel.log.push(`interrupt ${token}`);
    clearTimeout(job.timer);
    // The completion follows later, as the native one does.
    job.timer = setTimeout(() => job.finish(this.kernel.interruptTakes), 0);
    return true;
  }

  close(): boolean {
    this.closed = true;
    for (const job of this.bulk.values()) clearTimeout(job.timer);
    for (const job of this.starting.values()) if (job.timer) clearTimeout(job.timer);
    this.bulk.clear();
    this.starting.clear();
    return true;
  }

  ref(): void {
    this.refed = true;
  }

  unref(): void {
    this.refed = false;
  }

  /** Delivers a terminal ABORT for `callId`. */
  deliverAbort(callId: number, code: number): void {
    const id = Buffer.alloc(8);
    id.writeBigUInt64LE(BigInt(callId));
    const c = Buffer.alloc(4);
    c.writeInt32LE(code);
    this.deliver(Buffer.alloc(0), MSG_EOR, encodeSockaddr({ service: 1, address: '127.0.0.1', port: 1 }), Buffer.concat([cmsg(RXRPC_USER_CALL_ID, id), cmsg(RXRPC_ABORT, c)]));
  }

  /** Delivers one message as a batch of one record. */
  deliver(data: Buffer, flags: number, name: Buffer, control: Buffer): void {
    this.deliverBatch([{ data, flags, name, control }]);
  }

  /**
   * Delivers several messages in one batch, as one wakeup of the poll watcher
   * does; `error` is a recvmsg failure after them. Each record's name and
   * control lengths are what the kernel reported: `nameLength`/`controlLength`
   * may claim more than was written, as a corrupt record would, and so may
   * `dataOffset`/`dataLength` for the record's place in the batch's data.
   */
  deliverBatch(records: Array<{ data: Buffer; flags: number; name: Buffer; control: Buffer; nameLength?: number; controlLength?: number;
    dataOffset?: number; dataLength?: number }>, error?: Error): void {
    if (this.closed) return;
    const view = new DataView(this.meta.buffer, this.meta.byteOffset);
    const chunks: Buffer[] = [];
    let used = 0;
    records.forEach((r, i) => {
      const rec = i * RECORD_SIZE;
      view.setInt32(rec, r.flags, true);
      view.setInt32(rec + 4, r.dataOffset ?? used, true);
      view.setInt32(rec + 8, r.dataLength ?? r.data.length, true);
      view.setInt32(rec + 12, r.nameLength ?? r.name.length, true);
      view.setInt32(rec + 16, r.controlLength ?? r.control.length, true);
      this.meta.fill(0, rec + RECORD_NAME, rec + RECORD_SIZE);
      this.meta.set(r.name.subarray(0, 36), rec + RECORD_NAME);
      this.meta.set(r.control.subarray(0, 136), rec + RECORD_CONTROL);
      chunks.push(r.data);
      used += r.data.length;
    });
    this.onRecv(records.length, Buffer.concat(chunks), error);
  }
}

