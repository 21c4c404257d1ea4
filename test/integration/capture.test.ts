/**
 * Packet-level checks: the loopback traffic of a probe and a later call,
 * captured with tshark inside the VM and decoded by its Rx dissector.
 */
import { Client } from '../../lib/client';
import { Server } from '../../lib/server';
import { freshPort } from './helpers';
import { startCapture as startRowCapture } from './tshark';

const address = '127.0.0.1';
const DATA = 1;

interface Packet {
  src: number;
  dst: number;
  type: number;
  userStatus: number;
  service: number;
  seq: number;
}

/** A capture of the fields below, decoded into packets. */
async function startCapture(port: number) {
  const capture = await startRowCapture(port, ['udp.dstport', 'rx.type', 'rx.userstatus', 'rx.serviceid', 'rx.seq']);
  return {
    marker: capture.marker,
    stop: capture.stop,
    get packets(): Packet[] {
      return capture.rows.map((row) => {
        const [src, dst, type, userStatus, service, seq] = row.map(Number);
        return { src, dst, type, userStatus, service, seq };
      });
    },
  };
}

test('userStatus 1 marks the probe\'s first DATA packet only; reply service IDs match what the client reported', async () => {
  const port = freshPort();
  const capture = await startCapture(port);
  const server = new Server({ address, port, services: [52, 2503], upgrade: { from: 52, to: 2503 } }, (c) => Buffer.from(String(c.service)));
  const client = new Client();
  let probeService: number;
  let laterService: number;
  try {
    const probe = await client.probe({ address, port }, { service: 52, upgradeTo: 2503, request: Buffer.from('caps'), timeout: 20000 });
    probeService = probe.service;
    const later = await client.call({ address, port, service: 52 }, Buffer.from('x'), { timeout: 20000 });
    laterService = later.service;
    expect(later.data.toString()).toBe(String(later.service));
  } finally {
    client.close();
    await server.close();
    await capture.stop();
  }
  const packets = capture.packets.filter((p) => p.src !== capture.marker);
  const requests = packets.filter((p) => p.type === DATA && p.dst === port);
  const replies = packets.filter((p) => p.type === DATA && p.src === port);
  expect(requests.length).toBeGreaterThanOrEqual(2);
  // Rule 1 on the wire: the probe's first DATA packet, and no other, asks for the upgrade.
  expect(requests[0]).toMatchObject({ userStatus: 1, service: 52, seq: 1 });
  expect(requests.slice(1).filter((p) => p.userStatus !== 0)).toEqual([]);
  // The later call went to the service the probe learned, and was answered from it.
  expect(requests[requests.length - 1].service).toBe(probeService);
  expect(replies[replies.length - 1].service).toBe(laterService);
  for (const r of replies) expect([52, 2503]).toContain(r.service);
});
