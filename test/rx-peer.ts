/**
 * RxPeer: a small userspace Rx server over a node:dgram UDP socket, speaking
 * enough of the Rx wire protocol to answer the Linux kernel's AF_RXRPC client,
 * and recording every packet both ways so that tests can check the wire.
 * Test support only; not part of the library.
 *
 * What it does:
 * - reassembles requests from one or more DATA packets (jumbo packets are
 *   split), acknowledging each DATA packet (REQUESTED, DUPLICATE,
 *   OUT_OF_SEQUENCE or DELAY) and answering PING ACKs and REQUEST_ACK;
 * - replies with DATA packets (seq from 1, LAST_PACKET | REQUEST_ACK on the
 *   last, at most `maxData` bytes each, within the client's window),
 *   retransmits what the client has not acknowledged on a doubling timer,
 *   and stops when the client hard-ACKs the last packet, starts the next
 *   call on the channel, aborts, or `giveUp` ms have passed;
 * - service upgrade: in 'upgrade' mode, the first DATA packet of a new
 *   connection with userStatus 1 and serviceId == upgrade.from makes the
 *   connection (epoch + cid without channel bits) serve upgrade.to, for that
 *   call and every later one; 'plain' never upgrades; 'silent' drops every
 *   packet; 'abort' answers every call with an ABORT; 'busy' with BUSY.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';

export const TYPE = { DATA: 1, ACK: 2, BUSY: 3, ABORT: 4, ACKALL: 5, CHALLENGE: 6, RESPONSE: 7, DEBUG: 8, PARAMS: 9, VERSION: 13 } as const;
export const FLAG = { CLIENT_INITIATED: 1, REQUEST_ACK: 2, LAST_PACKET: 4, MORE_PACKETS: 8, JUMBO_PACKET: 32 } as const;
export const ACK = { REQUESTED: 1, DUPLICATE: 2, OUT_OF_SEQUENCE: 3, EXCEEDS_WINDOW: 4, NOSPACE: 5, PING: 6, PING_RESPONSE: 7, DELAY: 8, IDLE: 9 } as const;
export const HEADER_SIZE = 28;
/** Data bytes of every subpacket of a jumbo packet but the last; a 4-byte jumbo header follows each. */
export const JUMBO_DATALEN = 1412;
const ACK_BODY_SIZE = 18;
const ACKINFO_SIZE = 16;
const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
export const typeName = (t: number) => TYPE_NAMES.get(t) ?? `TYPE_${t}`;

export interface RxHeader {
  epoch: number;
  cid: number;
  callNumber: number;
  seq: number;
  serial: number;
  type: number;
  flags: number;
  userStatus: number;
  securityIndex: number;
  cksum: number;
  serviceId: number;
}

export interface AckBody {
  bufferSpace: number;
  maxSkew: number;
  /** First sequence number of the soft-ACK list: everything before it is hard-ACKed. */
  firstPacket: number;
  previousPacket: number;
  /** Serial of the packet that prompted this ACK. */
  serial: number;
  reason: number;
  /** Soft ACKs from firstPacket on: 1 ACK, 0 NACK. */
  acks: number[];
  /** The trailing ackinfo, when present. */
  info?: { rxMTU: number; maxMTU: number; rwind: number; jumboMax: number };
}

export interface RxPacket {
  header: RxHeader;
  /** DATA: one entry per (jumbo sub)packet, each with its own seq, serial and flags. */
  data?: Array<{ header: RxHeader; data: Buffer }>;
  ack?: AckBody;
  abortCode?: number;
}

/** A packet the peer's parser refuses. */
export class RxParseError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'RxParseError';
  }
}

export function encodeHeader(h: RxHeader, body: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(HEADER_SIZE + body.length);
  b.writeUInt32BE(h.epoch >>> 0, 0);
  b.writeUInt32BE(h.cid >>> 0, 4);
  b.writeUInt32BE(h.callNumber >>> 0, 8);
  b.writeUInt32BE(h.seq >>> 0, 12);
  b.writeUInt32BE(h.serial >>> 0, 16);
  b.writeUInt8(h.type, 20);
  b.writeUInt8(h.flags, 21);
  b.writeUInt8(h.userStatus, 22);
  b.writeUInt8(h.securityIndex, 23);
  b.writeUInt16BE(h.cksum, 24);
  b.writeUInt16BE(h.serviceId, 26);
  b.set(body, HEADER_SIZE);
  return b;
}

export function decodeHeader(b: Buffer): RxHeader {
  if (b.length < HEADER_SIZE) throw new RxParseError(`short header: ${b.length} bytes`);
  return {
    epoch: b.readUInt32BE(0), cid: b.readUInt32BE(4), callNumber: b.readUInt32BE(8), seq: b.readUInt32BE(12),
    serial: b.readUInt32BE(16), type: b[20], flags: b[21], userStatus: b[22], securityIndex: b[23],
    cksum: b.readUInt16BE(24), serviceId: b.readUInt16BE(26),
  };
}

export function encodeAck(a: AckBody): Buffer {
  const b = Buffer.alloc(ACK_BODY_SIZE + a.acks.length + (a.info ? 3 + ACKINFO_SIZE : 0));
  b.writeUInt16BE(a.bufferSpace, 0);
  b.writeUInt16BE(a.maxSkew, 2);
  b.writeUInt32BE(a.firstPacket >>> 0, 4);
  b.writeUInt32BE(a.previousPacket >>> 0, 8);
  b.writeUInt32BE(a.serial >>> 0, 12);
  b[16] = a.reason;
  b[17] = a.acks.length;
  a.acks.forEach((v, i) => (b[ACK_BODY_SIZE + i] = v));
  if (a.info) {
    const o = ACK_BODY_SIZE + a.acks.length + 3;
    b.writeUInt32BE(a.info.rxMTU, o);
    b.writeUInt32BE(a.info.maxMTU, o + 4);
    b.writeUInt32BE(a.info.rwind, o + 8);
    b.writeUInt32BE(a.info.jumboMax, o + 12);
  }
  return b;
}

export function decodeAck(b: Buffer): AckBody {
  if (b.length < ACK_BODY_SIZE) throw new RxParseError(`short ACK: ${b.length} bytes`);
  const n = b[17];
  if (b.length < ACK_BODY_SIZE + n) throw new RxParseError(`ACK with ${n} soft ACKs has room for ${b.length - ACK_BODY_SIZE}`);
  const acks = [...b.subarray(ACK_BODY_SIZE, ACK_BODY_SIZE + n)];
  if (acks.some((v) => v > 1)) throw new RxParseError('soft ACK neither ACK nor NACK');
  const o = ACK_BODY_SIZE + n + 3;
  const info = b.length >= o + ACKINFO_SIZE
    ? { rxMTU: b.readUInt32BE(o), maxMTU: b.readUInt32BE(o + 4), rwind: b.readUInt32BE(o + 8), jumboMax: b.readUInt32BE(o + 12) }
    : undefined;
  return {
    bufferSpace: b.readUInt16BE(0), maxSkew: b.readUInt16BE(2), firstPacket: b.readUInt32BE(4),
    previousPacket: b.readUInt32BE(8), serial: b.readUInt32BE(12), reason: b[16], acks, info,
  };
}

/** Splits a DATA payload into its subpackets: each jumbo header gives the next one's flags; seq and serial count up. */
export function splitJumbo(header: RxHeader, payload: Buffer): Array<{ header: RxHeader; data: Buffer }> {
  const out: Array<{ header: RxHeader; data: Buffer }> = [];
  let h = header;
  let rest = payload;
  while (h.flags & FLAG.JUMBO_PACKET) {
    if (rest.length < JUMBO_DATALEN + 4) throw new RxParseError(`truncated jumbo subpacket ${out.length + 1}: ${rest.length} bytes`);
    out.push({ header: h, data: rest.subarray(0, JUMBO_DATALEN) });
    const j = rest.subarray(JUMBO_DATALEN, JUMBO_DATALEN + 4);
    h = { ...h, seq: h.seq + 1, serial: h.serial + 1, flags: j[0], cksum: j.readUInt16BE(2) };
    rest = rest.subarray(JUMBO_DATALEN + 4);
  }
  out.push({ header: h, data: rest });
  return out;
}

/** Decodes a whole UDP payload; throws RxParseError on anything malformed. */
export function decodePacket(b: Buffer): RxPacket {
  const header = decodeHeader(b);
  const body = b.subarray(HEADER_SIZE);
  switch (header.type) {
    case TYPE.DATA:
      if (header.callNumber === 0) throw new RxParseError('DATA with callNumber 0');
      if (header.seq === 0) throw new RxParseError('DATA with seq 0');
      return { header, data: splitJumbo(header, body) };
    case TYPE.ACK:
      return { header, ack: decodeAck(body) };
    case TYPE.ABORT:
      if (body.length < 4) throw new RxParseError(`short ABORT: ${body.length} bytes`);
      return { header, abortCode: body.readInt32BE(0) };
    default:
      return { header };
  }
}

/** One packet on the wire, as the peer's log records it. */
export interface WireRecord {
  /** Position in one sequence shared by every peer in the process. */
  order: number;
  /** performance.now() in ms. */
  time: number;
  dir: 'in' | 'out';
  /** The client's UDP address, "address:port" (sender of 'in', destination of 'out'). */
  remote: string;
  type: number;
  typeName: string;
  flags: number;
  userStatus: number;
  serviceId: number;
  epoch: number;
  cid: number;
  callNumber: number;
  seq: number;
  serial: number;
  /** Payload bytes after the header. */
  length: number;
  subpackets?: number;
  ack?: { reason: number; firstPacket: number; previousPacket: number; serial: number; acks: string; rwind?: number; jumboMax?: number };
  abortCode?: number;
  retransmit?: boolean;
  /** Why the packet was refused (typeName 'MALFORMED'). */
  error?: string;
}

export type PeerMode = 'upgrade' | 'plain' | 'silent' | 'abort' | 'busy';
export type HandlerResult = Buffer | { abort: number };

/** One call as the peer saw it. */
export interface PeerCall {
  epoch: number;
  cid: number;
  callNumber: number;
  from: { address: string; port: number };
  /** serviceId of the call's first DATA packet. */
  askedService: number;
  /** The service that serves the call; replies carry it (or replyService). */
  service: number;
  upgradeRequested: boolean;
  upgraded: boolean;
  newConnection: boolean;
  mode: PeerMode;
  request?: Buffer;
  reply?: Buffer;
  abortCode?: number;
  state: 'receiving' | 'handling' | 'replying' | 'complete' | 'aborted' | 'client-aborted' | 'gave-up' | 'dropped' | 'busy';
  /** Log order of the reply's last DATA packet (first transmission), or of the peer's ABORT. */
  replySentAt?: number;
  /** Log order of the client's packet that completed the call: its ACK, or the next call on the channel. */
  completedAt?: number;
  implicitlyCompleted?: boolean;
  retransmits: number;
}

export interface RxPeerOptions {
  /** UDP port; 0 lets the system choose (see .port). */
  port: number;
  address?: string;
  /** Per peer, or per call (decided at its first packet). Default 'upgrade'. */
  mode?: PeerMode | ((call: PeerCall) => PeerMode);
  upgrade?: { from: number; to: number };
  /** The code of 'abort' mode (default RX_USER_ABORT, -6). */
  abortCode?: number;
  /** The reply body, or an abort. Default: the serving service ID as text. */
  handler?: (service: number, request: Buffer, call: PeerCall) => HandlerResult | Promise<HandlerResult>;
  /** ms to wait between a complete request and the handler. */
  delay?: number | ((call: PeerCall) => number);
  /** A misbehaving server: the serviceId on every reply, whatever was served. */
  replyService?: number;
  /** Data bytes per reply DATA packet (default 1412). */
  maxData?: number;
  /** First retransmission after this many ms, doubling (default 300). */
  rto?: number;
  /** Stop retransmitting a reply after this many ms (default 4000). */
  giveUp?: number;
  /** The ackinfo sent with every ACK. */
  ackInfo?: { rxMTU: number; maxMTU: number; rwind: number; jumboMax: number };
}

interface Conn {
  serial: number;
  service: number;
  upgraded: boolean;
  channels: Map<number, CallState>;
}

interface CallState {
  call: PeerCall;
  conn: Conn;
  header: RxHeader;
  rx: Map<number, Buffer>;
  rxHard: number; // highest seq with all before it received
  rxTop: number; // highest seq received
  rxLast: number; // seq of the LAST_PACKET, 0 until seen
  tx: Buffer[];
  txSent: number; // highest seq sent
  txHard: number; // highest seq hard-ACKed by the client
  soft: Set<number>;
  rwind: number;
  replyStart: number;
  rto: number;
  timer?: NodeJS.Timeout;
}

let order = 0;
const RX_USER_ABORT = -6;

export class RxPeer {
  readonly log: WireRecord[] = [];
  readonly calls: PeerCall[] = [];
  readonly port: number;
  readonly address: string;
  private readonly socket: dgram.Socket;
  private readonly conns = new Map<string, Conn>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly o: Required<Omit<RxPeerOptions, 'replyService' | 'handler'>> & Pick<RxPeerOptions, 'replyService' | 'handler'>;
  private closed = false;

  private constructor(options: RxPeerOptions, socket: dgram.Socket) {
    this.o = {
      address: '127.0.0.1', mode: 'upgrade', upgrade: { from: 52, to: 2503 }, abortCode: RX_USER_ABORT, delay: 0,
      maxData: JUMBO_DATALEN, rto: 300, giveUp: 4000, ackInfo: { rxMTU: 1444, maxMTU: 1444, rwind: 32, jumboMax: 4 },
      ...options,
    };
    this.port = socket.address().port; // options.port, or the one the system chose for 0
    this.address = this.o.address;
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.receive(msg, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', () => {}); // ICMP unreachable and the like: the log shows what was sent
    socket.unref();
  }

  static start(options: RxPeerOptions): Promise<RxPeer> {
    const socket = dgram.createSocket(options.address?.includes(':') ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port, options.address ?? '127.0.0.1', () => {
        socket.off('error', reject);
        resolve(new RxPeer(options, socket));
      });
    });
  }

  /** Records of one direction and type. */
  packets(dir: 'in' | 'out', type?: number): WireRecord[] {
    return this.log.filter((r) => r.dir === dir && (type === undefined || r.type === type));
  }

  /** Resolves once `ready()` holds, checking every 20 ms; rejects after `ms`. */
  async until(ready: () => boolean, ms = 5000): Promise<void> {
    const end = performance.now() + ms;
    while (!ready()) {
      if (performance.now() > end) throw new Error(`RxPeer ${this.port}: condition not met within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    t.unref();
    this.timers.add(t);
    return t;
  }

  private record(dir: 'in' | 'out', remote: { address: string; port: number }, h: RxHeader, length: number,
    extra: Partial<WireRecord> = {}): void {
    this.log.push({
      order: ++order, time: performance.now(), dir, remote: `${remote.address}:${remote.port}`, type: h.type, typeName: typeName(h.type), flags: h.flags,
      userStatus: h.userStatus, serviceId: h.serviceId, epoch: h.epoch, cid: h.cid, callNumber: h.callNumber,
      seq: h.seq, serial: h.serial, length, ...extra,
    });
  }

  private send(s: CallState, type: number, fields: Partial<RxHeader>, body: Buffer, extra: Partial<WireRecord> = {}): number {
    const h: RxHeader = {
      ...s.header, seq: 0, flags: 0, userStatus: 0, cksum: 0, ...fields, type, serial: ++s.conn.serial,
      serviceId: this.o.replyService ?? s.call.service,
    };
    if (this.closed) return 0;
    this.socket.send(encodeHeader(h, body), s.call.from.port, s.call.from.address);
    const ack = type === TYPE.ACK ? decodeAck(body) : undefined;
    this.record('out', s.call.from, h, body.length, {
      ...extra,
      ...(ack && { ack: { reason: ack.reason, firstPacket: ack.firstPacket, previousPacket: ack.previousPacket, serial: ack.serial, acks: ack.acks.join('') } }),
      ...(type === TYPE.ABORT && { abortCode: body.readInt32BE(0) }),
    });
    return order;
  }

  private sendAck(s: CallState, reason: number, serial: number): void {
    const acks: number[] = [];
    for (let q = s.rxHard + 1; q <= s.rxTop; q++) acks.push(s.rx.has(q) ? 1 : 0);
    const body = encodeAck({
      bufferSpace: 0, maxSkew: 0, firstPacket: s.rxHard + 1, previousPacket: s.rxTop, serial, reason, acks, info: this.o.ackInfo,
    });
    this.send(s, TYPE.ACK, {}, body);
  }

  private receive(msg: Buffer, from: { address: string; port: number }): void {
    if (this.closed) return;
    let p: RxPacket;
    try {
      p = decodePacket(msg);
    } catch (err) {
      const h = msg.length >= HEADER_SIZE ? decodeHeader(msg) : undefined;
      this.record('in', from, h ?? { epoch: 0, cid: 0, callNumber: 0, seq: 0, serial: 0, type: -1, flags: 0, userStatus: 0, securityIndex: 0, cksum: 0, serviceId: 0 },
        msg.length - HEADER_SIZE, { typeName: 'MALFORMED', error: (err as Error).message });
      return;
    }
    const h = p.header;
    const a = p.ack;
    this.record('in', from, h, msg.length - HEADER_SIZE, {
      ...(p.data && p.data.length > 1 && { subpackets: p.data.length }),
      ...(a && { ack: { reason: a.reason, firstPacket: a.firstPacket, previousPacket: a.previousPacket, serial: a.serial,
        acks: a.acks.join(''), rwind: a.info?.rwind, jumboMax: a.info?.jumboMax } }),
      ...(p.abortCode !== undefined && { abortCode: p.abortCode }),
    });
    const at = order;
    if (!(h.flags & FLAG.CLIENT_INITIATED) || h.callNumber === 0) return; // only client call packets matter here
    const connKey = `${from.address}|${from.port}|${h.epoch}|${h.cid & ~3}`;
    let conn = this.conns.get(connKey);
    let s = conn?.channels.get(h.cid & 3);
    if (!s || h.callNumber > s.call.callNumber) {
      if (h.type !== TYPE.DATA) return; // nothing to say about calls we never saw
      if (s && s.call.state === 'replying') this.complete(s, at, true); // the next call on a channel ends the last
      s = this.newCall(connKey, conn, h, from);
      conn = s.conn;
    } else if (h.callNumber < s.call.callNumber) {
      return;
    }
    const state = s.call.state;
    if (state === 'dropped') return;
    if (h.type === TYPE.ABORT) {
      this.stop(s, 'client-aborted');
    } else if (h.type === TYPE.DATA) {
      if (s.call.mode === 'busy') this.send(s, TYPE.BUSY, {}, Buffer.alloc(0));
      else if (state === 'aborted') this.send(s, TYPE.ABORT, {}, int32(s.call.abortCode!));
      else this.inputData(s, p.data!);
    } else if (a) {
      if (a.info) s.rwind = Math.max(1, Math.min(a.info.rwind, 255));
      if (a.reason === ACK.PING) this.sendAck(s, ACK.PING_RESPONSE, h.serial);
      else if (h.flags & FLAG.REQUEST_ACK) this.sendAck(s, ACK.REQUESTED, h.serial);
      if (state === 'replying') this.inputAck(s, a, at);
    }
  }

  private newCall(connKey: string, conn: Conn | undefined, h: RxHeader, from: { address: string; port: number }): CallState {
    const call: PeerCall = {
      epoch: h.epoch, cid: h.cid, callNumber: h.callNumber, from, askedService: h.serviceId, service: h.serviceId,
      upgradeRequested: h.userStatus === 1, upgraded: false, newConnection: !conn, mode: 'plain', state: 'receiving', retransmits: 0,
    };
    call.mode = typeof this.o.mode === 'function' ? this.o.mode(call) : this.o.mode;
    if (!conn) {
      // Upgrade is decided once per connection, by its first DATA packet.
      const up = call.mode === 'upgrade' && h.userStatus === 1 && h.serviceId === this.o.upgrade.from;
      conn = { serial: 0, service: up ? this.o.upgrade.to : h.serviceId, upgraded: up, channels: new Map() };
      this.conns.set(connKey, conn);
    }
    call.service = conn.service;
    call.upgraded = conn.upgraded && call.newConnection;
    if (call.mode === 'silent') call.state = 'dropped';
    if (call.mode === 'busy') call.state = 'busy';
    this.calls.push(call);
    const s: CallState = {
      call, conn, header: { ...h, flags: 0, userStatus: 0, seq: 0 }, rx: new Map(), rxHard: 0, rxTop: 0, rxLast: 0,
      tx: [], txSent: 0, txHard: 0, soft: new Set(), rwind: 16, replyStart: 0, rto: this.o.rto,
    };
    conn.channels.set(h.cid & 3, s);
    return s;
  }

  private inputData(s: CallState, parts: Array<{ header: RxHeader; data: Buffer }>): void {
    for (const { header: h, data } of parts) {
      const dup = h.seq <= s.rxHard || s.rx.has(h.seq) || (s.rxLast !== 0 && h.seq > s.rxLast);
      if (!dup) {
        s.rx.set(h.seq, data);
        s.rxTop = Math.max(s.rxTop, h.seq);
        if (h.flags & FLAG.LAST_PACKET) s.rxLast = h.seq;
        while (s.rx.has(s.rxHard + 1)) s.rxHard++;
      }
      const reason = h.flags & FLAG.REQUEST_ACK ? ACK.REQUESTED : dup ? ACK.DUPLICATE : s.rxHard < s.rxTop ? ACK.OUT_OF_SEQUENCE : ACK.DELAY;
      this.sendAck(s, reason, h.serial);
    }
    if (s.call.state !== 'receiving' || s.rxLast === 0 || s.rxHard !== s.rxLast) return;
    s.call.state = 'handling';
    const chunks: Buffer[] = [];
    for (let q = 1; q <= s.rxLast; q++) chunks.push(s.rx.get(q)!);
    const request = (s.call.request = Buffer.concat(chunks));
    const delay = typeof this.o.delay === 'function' ? this.o.delay(s.call) : this.o.delay;
    this.later(delay, () => {
      const run = async (): Promise<HandlerResult> => {
        if (s.call.mode === 'abort') return { abort: this.o.abortCode };
        return this.o.handler ? this.o.handler(s.call.service, request, s.call) : Buffer.from(String(s.call.service));
      };
      run().then((r) => this.reply(s, r), () => this.reply(s, { abort: RX_USER_ABORT }));
    });
  }

  private reply(s: CallState, r: HandlerResult): void {
    if (this.closed || s.call.state !== 'handling') return;
    if (!Buffer.isBuffer(r)) {
      s.call.abortCode = r.abort;
      s.call.state = 'aborted';
      s.call.replySentAt = this.send(s, TYPE.ABORT, {}, int32(r.abort));
      return;
    }
    s.call.reply = r;
    for (let off = 0; off < r.length || s.tx.length === 0; off += this.o.maxData) s.tx.push(r.subarray(off, off + this.o.maxData));
    s.call.state = 'replying';
    s.replyStart = performance.now();
    this.transmit(s);
  }

  /** Sends new packets within the client's window and (re)arms the retransmission timer. */
  private transmit(s: CallState): void {
    const top = Math.min(s.tx.length, s.txHard + s.rwind);
    while (s.txSent < top) {
      const seq = ++s.txSent;
      const last = seq === s.tx.length;
      const flags = last ? FLAG.LAST_PACKET | FLAG.REQUEST_ACK : seq < top ? FLAG.MORE_PACKETS : 0;
      const at = this.send(s, TYPE.DATA, { seq, flags }, s.tx[seq - 1]);
      if (last) s.call.replySentAt = at;
    }
    if (s.timer) clearTimeout(s.timer);
    s.timer = this.later(s.rto, () => this.retransmit(s));
  }

  private retransmit(s: CallState): void {
    if (s.call.state !== 'replying') return;
    if (performance.now() - s.replyStart > this.o.giveUp) {
      this.stop(s, 'gave-up');
      return;
    }
    const missing: number[] = [];
    for (let q = s.txHard + 1; q <= s.txSent; q++) if (!s.soft.has(q)) missing.push(q);
    // All soft-ACKed but not hard-ACKed: resend the last to ask for a fresh ACK.
    if (missing.length === 0) missing.push(s.txSent);
    missing.forEach((seq, i) => {
      const last = seq === s.tx.length;
      const flags = (last ? FLAG.LAST_PACKET : 0) | (last || i === missing.length - 1 ? FLAG.REQUEST_ACK : 0);
      this.send(s, TYPE.DATA, { seq, flags }, s.tx[seq - 1], { retransmit: true });
      s.call.retransmits++;
    });
    s.rto = Math.min(s.rto * 2, 2000);
    s.timer = this.later(s.rto, () => this.retransmit(s));
  }

  private inputAck(s: CallState, a: AckBody, at: number): void {
    const hard = Math.min(a.firstPacket - 1, s.txSent);
    if (hard > s.txHard) s.txHard = hard;
    a.acks.forEach((v, i) => {
      const seq = a.firstPacket + i;
      if (v) s.soft.add(seq);
      else s.soft.delete(seq);
    });
    if (s.txHard >= s.tx.length) this.complete(s, at, false);
    else if (s.txSent < s.tx.length) this.transmit(s);
  }

  private complete(s: CallState, at: number, implicit: boolean): void {
    s.call.completedAt = at;
    if (implicit) s.call.implicitlyCompleted = true;
    this.stop(s, 'complete');
  }

  private stop(s: CallState, state: PeerCall['state']): void {
    if (s.timer) clearTimeout(s.timer);
    if (s.timer) this.timers.delete(s.timer);
    s.timer = undefined;
    if (s.call.state === 'receiving' || s.call.state === 'handling' || s.call.state === 'replying') s.call.state = state;
  }
}

function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v | 0, 0);
  return b;
}
