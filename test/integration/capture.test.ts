/**
 * Packet-level checks: the loopback traffic of a probe and a later call,
 * captured with tshark inside the VM and decoded by its Rx dissector.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
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

function startCapture(port: number, file: string): Promise<ChildProcess> {
  const tshark = spawn('tshark', ['-i', 'lo', '-f', `udp port ${port}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    tshark.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) resolve(tshark);
    });
    tshark.on('exit', (code) => reject(new Error(`tshark exited with ${code}: ${err}`)));
  });
}

function decode(file: string, port: number): Packet[] {
  const out = execFileSync('tshark', [
    '-r', file, '-d', `udp.port==${port},rx`, '-T', 'fields', '-E', 'separator=,',
    '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'rx.type', '-e', 'rx.userstatus', '-e', 'rx.serviceid', '-e', 'rx.seq',
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.trim().split('\n').filter(Boolean).map((line) => {
    const [src, dst, type, userStatus, service, seq] = line.split(',').map((f) => Number(f));
    return { src, dst, type, userStatus, service, seq };
  });
}

test('userStatus 1 marks the probe\'s first DATA packet only; reply service IDs match what the client reported', async () => {
  const port = freshPort();
  const file = `/tmp/capture-${port}.pcap`;
  const tshark = await startCapture(port, file);
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
    // The capture hands packets over in blocks on a timer: let the last block arrive.
    await new Promise((r) => setTimeout(r, 2500));
    const exited = new Promise((r) => tshark.once('exit', r));
    tshark.kill('SIGINT');
    await exited;
  }
  const packets = decode(file, port);
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
