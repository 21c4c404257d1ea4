/**
 * Live packet capture of one UDP port on lo with tshark, decoded as Rx.
 * It is ready only once a marker datagram sent to the port has come through:
 * "Capturing on ..." is printed a moment before the capture filter is in place.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';

export interface Capture {
  /** The port captured. */
  port: number;
  /** One row per packet: the requested fields in order, udp.srcport first. */
  rows: string[][];
  /** The source port of the marker datagrams (leave its rows out). */
  marker: number;
  /** Waits for the last packets, then ends the capture. */
  stop: () => Promise<void>;
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

export async function startCapture(port: number, fields: readonly string[]): Promise<Capture> {
  const tshark = spawn('tshark', [
    '-i', 'lo', '-l', '-f', `udp port ${port}`, '-d', `udp.port==${port},rx`, '-T', 'fields', '-E', 'separator=,',
    ...['udp.srcport', ...fields].flatMap((f) => ['-e', f]),
  ], { stdio: ['ignore', 'pipe', 'ignore'], env: withoutPreload() });
  const rows: string[][] = [];
  let buffered = '';
  tshark.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) rows.push(line.split(','));
  });
  const exited = new Promise<void>((resolve) => tshark.once('exit', () => resolve()));
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const marker = udp.address().port;
  try {
    for (let i = 0; !rows.some((r) => Number(r[0]) === marker); i++) {
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
  return { port, rows, marker, stop };
}
