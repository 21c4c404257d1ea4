/**
 * Packet-level checks: the loopback traffic of a probe and a later call,
 * captured with tshark inside the VM and decoded by its Rx dissector.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Client } from '../../lib/client';
import { Server } from '../../lib/server';
import { freshPort } from './helpers';

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

/**
 * The environment for tshark: without LD_PRELOAD, which the sanitizer run
 * (scripts/test-sanitize.js) sets to ASan's runtime for every process; with
 * it, tshark captures nothing (measured on Debian 12's tshark 4.0).
 */
function withoutPreload(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _ignored, ...env } = process.env;
  return env;
}

/**
 * Live capture and Rx decoding of one UDP port. It is ready only once a
 * marker datagram sent to the port has come through: "Capturing on ..." is
 * printed a moment before the capture filter is in place.
 */
async function startCapture(port: number): Promise<{ packets: Packet[]; stop: () => Promise<void>; marker: number }> {
  const tshark = spawn('tshark', [
    '-i', 'lo', '-l', '-f', `udp port ${port}`, '-d', `udp.port==${port},rx`, '-T', 'fields', '-E', 'separator=,',
    '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'rx.type', '-e', 'rx.userstatus', '-e', 'rx.serviceid', '-e', 'rx.seq',
  ], { stdio: ['ignore', 'pipe', 'ignore'], env: withoutPreload() });
  const packets: Packet[] = [];
  let buffered = '';
  tshark.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [src, dst, type, userStatus, service, seq] = line.split(',').map((f) => Number(f));
      packets.push({ src, dst, type, userStatus, service, seq });
    }
  });
  const exited = new Promise<void>((resolve) => tshark.once('exit', () => resolve()));
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const marker = udp.address().port;
  try {
    for (let i = 0; !packets.some((p) => p.src === marker); i++) {
      if (i > 300 || tshark.exitCode !== null) throw new Error('tshark never saw the marker datagram');
      udp.send('marker', port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    udp.close();
  }
  const stop = async () => {
    await new Promise((r) => setTimeout(r, 1000)); // the last packets, then a clean exit flushes the rest
    tshark.kill('SIGINT');
    await exited;
  };
  return { packets, stop, marker };
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
