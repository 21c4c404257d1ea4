/**
 * The test Rx peer (test/rx-peer.ts) on the host, without a kernel: its codec
 * as pure functions, and its protocol behaviour driven by a scripted Rx
 * client over a UDP socket on 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import path from 'node:path';
import {
  ACK, decodeAck, decodeHeader, decodePacket, encodeAck, encodeHeader, FLAG, JUMBO_DATALEN, RxHeader, RxPacket,
  RxParseError, RxPeer, RxPeerOptions, splitJumbo, TYPE,
} from '../rx-peer';

const HOST = '127.0.0.1';
const header = (h: Partial<RxHeader> = {}): RxHeader => ({
  epoch: 0x12345678, cid: 0x40000000, callNumber: 1, seq: 1, serial: 1, type: TYPE.DATA,
  flags: FLAG.CLIENT_INITIATED | FLAG.LAST_PACKET, userStatus: 0, securityIndex: 0, cksum: 0, serviceId: 52, ...h,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A scripted Rx client: sends what it is told and collects what comes back. */
class Script {
  readonly received: RxPacket[] = [];
  private serial = 0;
  private cursor = 0;
  private constructor(private readonly socket: dgram.Socket, private readonly peer: RxPeer) {
    socket.on('message', (m) => this.received.push(decodePacket(m)));
  }
  static async open(peer: RxPeer): Promise<Script> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, HOST, r));
    return new Script(socket, peer);
  }
  send(h: Partial<RxHeader>, body: Uint8Array = Buffer.alloc(0)): void {
    this.socket.send(encodeHeader(header({ serial: ++this.serial, ...h }), body), this.peer.port, HOST);
  }
  sendRaw(b: Buffer): void {
    this.socket.send(b, this.peer.port, HOST);
  }
  ack(h: Partial<RxHeader>, firstPacket: number, acks: number[] = [], reason: number = ACK.DELAY, rwind = 32): void {
    this.send({ type: TYPE.ACK, flags: FLAG.CLIENT_INITIATED, seq: 0, ...h },
      encodeAck({ bufferSpace: 0, maxSkew: 0, firstPacket, previousPacket: 0, serial: 0, reason, acks, info: { rxMTU: 1444, maxMTU: 1444, rwind, jumboMax: 1 } }));
  }
  /** The next packet (after those already taken) that matches; fails after `ms`. */
  async next(match: (p: RxPacket) => boolean = () => true, ms = 3000): Promise<RxPacket> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.received.findIndex((p, k) => k >= this.cursor && match(p));
      if (i >= 0) {
        this.cursor = i + 1;
        return this.received[i];
      }
      if (Date.now() > end) throw new Error('no matching packet');
      await sleep(5);
    }
  }
  close(): void {
    this.socket.close();
  }
}
const isData = (p: RxPacket) => p.header.type === TYPE.DATA;
const isAck = (p: RxPacket) => p.header.type === TYPE.ACK;

describe('rx-peer codec', () => {
  test('the header is 28 bytes, big-endian, in wire order, and decodes back', () => {
    const h = header({
      epoch: 0x01020304, cid: 0x05060708, callNumber: 0x090a0b0c, seq: 0x0d0e0f10, serial: 0x11121314, type: 2,
      flags: 0x21, userStatus: 1, securityIndex: 2, cksum: 0xabcd, serviceId: 2503,
    });
    const b = encodeHeader(h, Buffer.from('xy'));
    expect(b.toString('hex')).toBe('0102030405060708090a0b0c0d0e0f1011121314' + '02210102' + 'abcd' + '09c7' + '7879');
    expect(decodeHeader(b)).toEqual(h);
    expect(decodeHeader(encodeHeader({ ...h, epoch: 0xffffffff, cid: 0x80000003 }))).toMatchObject({ epoch: 0xffffffff, cid: 0x80000003 });
  });

  test('ACK bodies round-trip with soft ACKs and the trailing ackinfo, which is optional', () => {
    const a = { bufferSpace: 3, maxSkew: 4, firstPacket: 5, previousPacket: 7, serial: 99, reason: ACK.PING, acks: [1, 0, 1],
      info: { rxMTU: 1444, maxMTU: 1400, rwind: 63, jumboMax: 4 } };
    const b = encodeAck(a);
    expect(b.length).toBe(18 + 3 + 3 + 16);
    expect(decodeAck(b)).toEqual(a);
    const bare = encodeAck({ ...a, info: undefined });
    expect(bare.length).toBe(21);
    expect(decodeAck(bare).info).toBeUndefined();
    expect(decodePacket(encodeHeader(header({ type: TYPE.ACK }), b)).ack).toEqual(a);
  });

  test('jumbo DATA splits into subpackets: seq and serial count up, flags come from each jumbo header', () => {
    const jumbo = (flags: number) => Buffer.from([flags, 0, 0, 0]);
    const payload = Buffer.concat([
      Buffer.alloc(JUMBO_DATALEN, 1), jumbo(FLAG.CLIENT_INITIATED | FLAG.JUMBO_PACKET),
      Buffer.alloc(JUMBO_DATALEN, 2), jumbo(FLAG.CLIENT_INITIATED | FLAG.LAST_PACKET),
      Buffer.alloc(10, 3),
    ]);
    const h = header({ seq: 4, serial: 40, flags: FLAG.CLIENT_INITIATED | FLAG.JUMBO_PACKET | FLAG.REQUEST_ACK });
    const parts = decodePacket(encodeHeader(h, payload)).data!;
    expect(parts.map((p) => [p.header.seq, p.header.serial, p.header.flags, p.data.length, p.data[0]])).toEqual([
      [4, 40, h.flags, JUMBO_DATALEN, 1],
      [5, 41, FLAG.CLIENT_INITIATED | FLAG.JUMBO_PACKET, JUMBO_DATALEN, 2],
      [6, 42, FLAG.CLIENT_INITIATED | FLAG.LAST_PACKET, 10, 3],
    ]);
    // Without the jumbo flag the same bytes are one packet.
    expect(splitJumbo(header(), payload)).toHaveLength(1);
  });

  test.each([
    ['a 27-byte datagram', Buffer.alloc(27), /short header/],
    ['an empty datagram', Buffer.alloc(0), /short header/],
    ['DATA with callNumber 0', encodeHeader(header({ callNumber: 0 })), /callNumber 0/],
    ['DATA with seq 0', encodeHeader(header({ seq: 0 })), /seq 0/],
    ['a jumbo DATA cut inside its first subpacket', encodeHeader(header({ flags: FLAG.JUMBO_PACKET }), Buffer.alloc(1000)), /truncated jumbo/],
    ['a jumbo DATA whose second jumbo header promises more', encodeHeader(header({ flags: FLAG.JUMBO_PACKET }),
      Buffer.concat([Buffer.alloc(JUMBO_DATALEN), Buffer.from([FLAG.JUMBO_PACKET, 0, 0, 0]), Buffer.alloc(20)])), /truncated jumbo subpacket 2/],
    ['an ACK of 17 bytes', encodeHeader(header({ type: TYPE.ACK }), Buffer.alloc(17)), /short ACK/],
    ['an ACK with more soft ACKs than bytes', encodeHeader(header({ type: TYPE.ACK }), Buffer.concat([Buffer.alloc(17), Buffer.from([5, 1, 1])])), /5 soft ACKs/],
    ['an ACK with a soft ACK of 7', encodeHeader(header({ type: TYPE.ACK }), Buffer.concat([Buffer.alloc(17), Buffer.from([1, 7])])), /neither/],
    ['an ABORT without its code', encodeHeader(header({ type: TYPE.ABORT }), Buffer.alloc(3)), /short ABORT/],
  ])('refuses %s', (_what, bytes, message) => {
    expect(() => decodePacket(bytes)).toThrow(RxParseError);
    expect(() => decodePacket(bytes)).toThrow(message);
  });

  test('other packet types decode to their header alone; ABORT codes are signed', () => {
    expect(decodePacket(encodeHeader(header({ type: TYPE.VERSION }), Buffer.from('x')))).toEqual({ header: header({ type: TYPE.VERSION }) });
    expect(decodePacket(encodeHeader(header({ type: TYPE.ABORT }), Buffer.from([0xff, 0xff, 0xfe, 0x39]))).abortCode).toBe(-455);
  });
});

describe('rx-peer on a UDP socket', () => {
  let peer: RxPeer;
  let c: Script;
  const start = async (options: Partial<RxPeerOptions> = {}) => {
    peer = await RxPeer.start({ port: 0, ...options });
    c = await Script.open(peer);
  };
  afterEach(async () => {
    c?.close();
    await peer?.close();
  });

  test('malformed datagrams are logged with the reason and do not stop the peer', async () => {
    await start();
    c.sendRaw(Buffer.from('hello'));
    c.sendRaw(encodeHeader(header({ type: TYPE.ACK }), Buffer.alloc(4)));
    c.sendRaw(encodeHeader(header({ callNumber: 0 })));
    c.send({}, Buffer.from('ok'));
    const reply = await c.next(isData);
    expect(reply.data![0].data.toString()).toBe('52');
    const bad = peer.log.filter((r) => r.typeName === 'MALFORMED');
    expect(bad.map((r) => r.error)).toEqual([expect.stringMatching(/short header: 5/), expect.stringMatching(/short ACK/), expect.stringMatching(/callNumber 0/)]);
    expect(bad[1]).toMatchObject({ dir: 'in', epoch: 0x12345678, serviceId: 52 });
    expect(peer.calls).toHaveLength(1);
  });

  test('a call: ACK for the request, then the reply as server DATA, done when hard-ACKed', async () => {
    await start({ handler: (service, req) => Buffer.from(`${service}:${req}`) });
    c.send({ cid: 0x40000002, callNumber: 7, flags: FLAG.CLIENT_INITIATED | FLAG.LAST_PACKET | FLAG.REQUEST_ACK, serial: 9 }, Buffer.from('q'));
    const ack = await c.next(isAck);
    expect(ack.header).toMatchObject({ epoch: 0x12345678, cid: 0x40000002, callNumber: 7, flags: 0, serviceId: 52 });
    expect(ack.ack).toMatchObject({ reason: ACK.REQUESTED, firstPacket: 2, previousPacket: 1, serial: 9, acks: [] });
    expect(ack.ack!.info).toBeDefined();
    const data = await c.next(isData);
    expect(data.header).toMatchObject({ seq: 1, flags: FLAG.LAST_PACKET | FLAG.REQUEST_ACK, cid: 0x40000002, callNumber: 7, userStatus: 0 });
    expect(data.header.serial).toBeGreaterThan(ack.header.serial);
    expect(data.data![0].data.toString()).toBe('52:q');
    expect(peer.calls[0].state).toBe('replying');
    c.ack({ cid: 0x40000002, callNumber: 7 }, 2, [], ACK.IDLE);
    await peer.until(() => peer.calls[0]?.state === 'complete');
    expect(peer.calls[0]).toMatchObject({ request: Buffer.from('q'), reply: Buffer.from('52:q'), retransmits: 0 });
    expect(peer.calls[0].completedAt).toBeGreaterThan(peer.calls[0].replySentAt!);
    expect(peer.log.map((r) => `${r.dir} ${r.typeName}`)).toEqual(['in DATA', 'out ACK', 'out DATA', 'in ACK']);
  });

  test('upgrade: only the first DATA of a new connection with userStatus 1 and the "from" service; the connection remembers', async () => {
    await start({ upgrade: { from: 52, to: 2503 } });
    const reply = async (h: Partial<RxHeader>) => {
      c.send(h, Buffer.from('x'));
      const d = await c.next(isData);
      return [d.header.serviceId, d.data![0].data.toString()];
    };
    expect(await reply({ cid: 0x100, userStatus: 1 })).toEqual([2503, '2503']);
    // A later call on the same connection (another channel) is served by the upgraded service.
    expect(await reply({ cid: 0x101, serviceId: 2503 })).toEqual([2503, '2503']);
    expect(await reply({ cid: 0x200 })).toEqual([52, '52']); // no upgrade asked
    expect(await reply({ cid: 0x300, userStatus: 1, serviceId: 1 })).toEqual([1, '1']); // not the "from" service
    // The connection of 0x200 was not upgraded: asking later on it changes nothing.
    expect(await reply({ cid: 0x201, userStatus: 1 })).toEqual([52, '52']);
    expect(peer.calls.map((x) => [x.askedService, x.service, x.upgradeRequested, x.upgraded, x.newConnection])).toEqual([
      [52, 2503, true, true, true], [2503, 2503, false, false, false], [52, 52, false, false, true], [1, 1, true, false, true], [52, 52, true, false, false],
    ]);
  });

  test("'plain' never upgrades; a per-call mode callback decides at the first packet", async () => {
    await start({ mode: (call) => (call.cid === 0x100 ? 'plain' : 'upgrade') });
    c.send({ cid: 0x100, userStatus: 1 }, Buffer.from('x'));
    expect((await c.next(isData)).header.serviceId).toBe(52);
    c.send({ cid: 0x200, userStatus: 1 }, Buffer.from('x'));
    expect((await c.next(isData)).header.serviceId).toBe(2503);
    expect(peer.calls.map((x) => x.mode)).toEqual(['plain', 'upgrade']);
  });

  test('a request in several packets, out of order, duplicated and in a jumbo, is reassembled; each packet is ACKed', async () => {
    await start({ handler: (_s, req) => Buffer.from(String(req.length)) });
    const ci = FLAG.CLIENT_INITIATED;
    c.send({ seq: 2, flags: ci }, Buffer.from([2]));
    const ooo = await c.next(isAck);
    expect(ooo.ack).toMatchObject({ reason: ACK.OUT_OF_SEQUENCE, firstPacket: 1, previousPacket: 2, acks: [0, 1] });
    c.send({ seq: 1, flags: ci }, Buffer.from([1]));
    expect((await c.next(isAck)).ack).toMatchObject({ reason: ACK.DELAY, firstPacket: 3, acks: [] });
    c.send({ seq: 2, flags: ci }, Buffer.from([2]));
    expect((await c.next(isAck)).ack).toMatchObject({ reason: ACK.DUPLICATE, firstPacket: 3 });
    // seq 3 and 4 in one jumbo packet, the second one the last
    c.send({ seq: 3, flags: ci | FLAG.JUMBO_PACKET },
      Buffer.concat([Buffer.alloc(JUMBO_DATALEN, 3), Buffer.from([ci | FLAG.LAST_PACKET, 0, 0, 0]), Buffer.from([4])]));
    const data = await c.next(isData);
    expect(data.data![0].data.toString()).toBe(String(2 + JUMBO_DATALEN + 1));
    expect(peer.calls[0].request).toEqual(Buffer.concat([Buffer.from([1, 2]), Buffer.alloc(JUMBO_DATALEN, 3), Buffer.from([4])]));
    expect(peer.log.find((r) => r.subpackets)).toMatchObject({ seq: 3, subpackets: 2 });
    // one ACK per packet, the jumbo's two subpackets included
    expect(peer.packets('out', TYPE.ACK)).toHaveLength(5);
  });

  test('a large reply is cut into maxData packets; only the last has LAST_PACKET', async () => {
    await start({ handler: () => Buffer.alloc(5000, 7), maxData: 1412 });
    c.send({}, Buffer.from('x'));
    await peer.until(() => peer.packets('out', TYPE.DATA).length === 4);
    const out = peer.packets('out', TYPE.DATA);
    expect(out.map((r) => [r.seq, r.length, r.flags & (FLAG.LAST_PACKET | FLAG.REQUEST_ACK)])).toEqual([
      [1, 1412, 0], [2, 1412, 0], [3, 1412, 0], [4, 764, FLAG.LAST_PACKET | FLAG.REQUEST_ACK],
    ]);
    expect(out.map((r) => r.serial)).toEqual([...out.map((r) => r.serial)].sort((a, b) => a - b));
  });

  test('the reply respects the window the client advertises', async () => {
    await start({ handler: () => Buffer.alloc(5 * 100, 1), maxData: 100, delay: 150, rto: 5000 });
    const sent = () => peer.packets('out', TYPE.DATA).map((r) => r.seq);
    c.send({}, Buffer.from('x'));
    await c.next(isAck);
    c.ack({}, 1, [], ACK.PING, 2); // rwind 2, before the reply leaves
    await peer.until(() => sent().length === 2);
    await sleep(100);
    expect(sent()).toEqual([1, 2]);
    c.ack({}, 3, [], ACK.DELAY, 2);
    await peer.until(() => sent().length === 4);
    c.ack({}, 5, [], ACK.DELAY, 2);
    await peer.until(() => sent().length === 5);
    c.ack({}, 6, [], ACK.IDLE, 2);
    await peer.until(() => peer.calls[0]?.state === 'complete');
    expect(sent()).toEqual([1, 2, 3, 4, 5]);
  });

  test('unacknowledged reply packets are retransmitted (new serial, same seq) until the final ACK', async () => {
    await start({ handler: () => Buffer.alloc(300, 1), maxData: 100, rto: 60 });
    c.send({}, Buffer.from('x'));
    await peer.until(() => (peer.calls[0]?.retransmits ?? 0) >= 3);
    c.ack({}, 1, [1, 0, 1]); // seq 1 and 3 soft-ACKed, seq 2 not
    await peer.until(() => peer.packets('in', TYPE.ACK).length === 1);
    const before = peer.packets('out', TYPE.DATA).length;
    await peer.until(() => peer.packets('out', TYPE.DATA).length > before);
    await sleep(20);
    expect(peer.packets('out', TYPE.DATA).slice(before).map((r) => [r.seq, r.retransmit])).toEqual([[2, true]]);
    const retx = peer.packets('out', TYPE.DATA).filter((r) => r.retransmit);
    expect(new Set(retx.map((r) => r.serial)).size).toBe(retx.length);
    c.ack({}, 4, [], ACK.IDLE);
    await peer.until(() => peer.calls[0]?.state === 'complete');
    const sent = peer.packets('out', TYPE.DATA).length;
    await sleep(300);
    expect(peer.packets('out', TYPE.DATA).length).toBe(sent);
  });

  test('with no ACK at all the peer gives up after giveUp ms', async () => {
    await start({ rto: 40, giveUp: 250 });
    c.send({}, Buffer.from('x'));
    await peer.until(() => peer.calls[0]?.state === 'gave-up', 2000);
    const n = peer.packets('out', TYPE.DATA).length;
    expect(n).toBeGreaterThan(1);
    await sleep(300);
    expect(peer.packets('out', TYPE.DATA).length).toBe(n);
  });

  test('PING ACKs get a PING_RESPONSE naming the ping; ACKs with REQUEST_ACK get REQUESTED', async () => {
    await start({ delay: 100 });
    c.send({}, Buffer.from('x'));
    await c.next(isAck);
    c.ack({ serial: 77 }, 1, [], ACK.PING);
    expect((await c.next(isAck)).ack).toMatchObject({ reason: ACK.PING_RESPONSE, serial: 77, firstPacket: 2 });
    c.ack({ serial: 78, flags: FLAG.CLIENT_INITIATED | FLAG.REQUEST_ACK }, 1, [], ACK.DELAY);
    expect((await c.next(isAck)).ack).toMatchObject({ reason: ACK.REQUESTED, serial: 78 });
  });

  test("'abort' answers with an ABORT carrying the code; a handler can abort too; a client ABORT ends the call", async () => {
    await start({ mode: (call) => (call.callNumber === 1 ? 'abort' : 'upgrade'), abortCode: -455,
      handler: (_s, req) => (req.toString() === 'bad' ? { abort: 363524 } : Buffer.from('fine')), delay: (call) => (call.callNumber === 3 ? 5000 : 0) });
    c.send({ callNumber: 1, userStatus: 1 }, Buffer.from('x'));
    const abort = await c.next((p) => p.header.type === TYPE.ABORT);
    expect(abort).toMatchObject({ abortCode: -455, header: { callNumber: 1, serviceId: 52, flags: 0 } });
    c.send({ callNumber: 2, cid: 0x40000001 }, Buffer.from('bad'));
    expect((await c.next((p) => p.header.type === TYPE.ABORT)).abortCode).toBe(363524);
    c.send({ callNumber: 3, cid: 0x40000002 }, Buffer.from('x'));
    await c.next(isAck);
    c.send({ callNumber: 3, cid: 0x40000002, type: TYPE.ABORT, seq: 0 }, Buffer.from([0xff, 0xff, 0xff, 0xfa]));
    await peer.until(() => peer.calls[2]?.state === 'client-aborted');
    expect(peer.calls.map((x) => x.state)).toEqual(['aborted', 'aborted', 'client-aborted']);
  });

  test("'silent' drops everything but logs it; 'busy' answers DATA with BUSY", async () => {
    await start({ mode: (call) => (call.callNumber === 1 ? 'silent' : 'busy') });
    c.send({ callNumber: 1 }, Buffer.from('x'));
    c.ack({ callNumber: 1 }, 1, [], ACK.PING);
    c.send({ callNumber: 2, cid: 0x40000001 }, Buffer.from('x'));
    const busy = await c.next();
    expect(busy.header).toMatchObject({ type: TYPE.BUSY, callNumber: 2 });
    await sleep(50);
    expect(c.received).toHaveLength(1);
    expect(peer.packets('in').map((r) => r.typeName)).toEqual(['DATA', 'ACK', 'DATA']);
    expect(peer.calls.map((x) => x.state)).toEqual(['dropped', 'busy']);
  });

  test('the next call on a channel completes the previous one implicitly', async () => {
    await start({ rto: 1000 });
    c.send({ callNumber: 1 }, Buffer.from('x'));
    await c.next(isData);
    c.send({ callNumber: 2 }, Buffer.from('y'));
    await c.next(isData);
    expect(peer.calls[0]).toMatchObject({ state: 'complete', implicitlyCompleted: true });
    expect(peer.calls[1].state).toBe('replying');
  });

  test('the log holds every field, in one order shared by all peers', async () => {
    await start();
    const other = await RxPeer.start({ port: 0 });
    try {
      c.send({ userStatus: 1, serial: 5 }, Buffer.from('x'));
      await c.next(isData);
      const r = peer.log[0];
      expect(r).toMatchObject({ dir: 'in', type: TYPE.DATA, typeName: 'DATA', flags: FLAG.CLIENT_INITIATED | FLAG.LAST_PACKET,
        userStatus: 1, serviceId: 52, epoch: 0x12345678, cid: 0x40000000, callNumber: 1, seq: 1, serial: 5, length: 1 });
      expect(typeof r.time).toBe('number');
      c.sendRaw(Buffer.alloc(3));
      const s = await Script.open(other);
      s.sendRaw(Buffer.alloc(3));
      await other.until(() => other.log.length === 1);
      expect(other.log[0].order).toBeGreaterThan(peer.log[peer.log.length - 1].order);
      s.close();
    } finally {
      await other.close();
    }
  });

  test('close() stops timers and the socket; a peer never closed does not keep a process alive', async () => {
    await start({ rto: 30 });
    c.send({}, Buffer.from('x'));
    await c.next(isData);
    await peer.close();
    await peer.close();
    const n = peer.log.length;
    c.send({ callNumber: 2 }, Buffer.from('x'));
    await sleep(150);
    expect(peer.log.length).toBe(n);
    const module = path.join(__dirname, '..', 'rx-peer.js');
    const started = Date.now();
    const out = execFileSync(process.execPath, ['-e',
      `require(${JSON.stringify(module)}).RxPeer.start({ port: 0, rto: 50 }).then((p) => console.log('up', p.port > 0))`], { timeout: 10000 });
    expect(out.toString().trim()).toBe('up true');
    expect(Date.now() - started).toBeLessThan(10000);
  });
});
