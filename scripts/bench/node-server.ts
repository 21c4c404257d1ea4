/**
 * The Node side of the benchmark's server: the same echo-style service as
 * rxbench.c (reply with as many bytes as the request's first 4 bytes ask),
 * once on an Endpoint ('binding') and once with Server ('api'). Both bind
 * `service` and `service + 1` with the upgrade between them.
 *
 * Run as a forked worker: BINDING_PORT API_PORT SERVICE BACKLOG [PORTS] from
 * argv (each kind listens on PORTS consecutive ports from its first), then
 * { ready } over IPC; it exits when the parent goes.
 */
import { Endpoint } from '../../lib/endpoint';
import { Server } from '../../lib/server';
import { ADDRESS } from './common';

const MAX_REPLY = 256 * 1024 * 1024;
let payload = Buffer.alloc(0);

function replyBytes(size: number): Buffer {
  const n = Math.min(size, MAX_REPLY);
  if (payload.length < n) payload = Buffer.alloc(n, 0x5a);
  return payload.subarray(0, n);
}

/** Collects the first 4 bytes of a request as it streams past. */
class Head {
  private bytes = Buffer.alloc(4);
  private got = 0;
  add(chunk: Buffer): void {
    if (this.got < 4) this.got += chunk.copy(this.bytes, this.got, 0, Math.min(chunk.length, 4 - this.got));
  }
  get size(): number {
    return this.got < 4 ? 0 : this.bytes.readUInt32BE(0);
  }
}

export function bindingServer(port: number, service: number, backlog: number): Endpoint {
  const endpoint = new Endpoint();
  endpoint.raw.bind({ service, address: ADDRESS, port });
  endpoint.raw.bind({ service: service + 1, address: ADDRESS, port });
  endpoint.raw.setUpgradeableService(service, service + 1);
  endpoint.listen(backlog);
  endpoint.on('error', () => {});
  endpoint.on('call', (call) => {
    const head = new Head();
    call.ondata = (chunk, end) => {
      head.add(chunk);
      if (end) call.write(replyBytes(head.size), false);
    };
  });
  return endpoint;
}

export function apiServer(port: number, service: number, backlog: number): Server {
  const server = new Server(
    // No request limit: the bulk workloads upload 16 MiB (the default limit is 4 MiB).
    { address: ADDRESS, port, services: [service, service + 1], upgrade: { from: service, to: service + 1 }, backlog, maxRequestBytes: Infinity },
    async (call) => {
      const head = new Head();
      for await (const chunk of call) head.add(chunk);
      return replyBytes(head.size);
    },
  );
  server.on('warning', () => {}); // the upgrade probe measures what the kernel does
  server.on('error', () => {});
  return server;
}

if (require.main === module) {
  const [bindingPort, apiPort, service, backlog, ports = 1] = process.argv.slice(2).map(Number);
  for (let i = 0; i < ports; i++) {
    bindingServer(bindingPort + i, service, backlog);
    apiServer(apiPort + i, service, backlog);
  }
  if (process.send) {
    process.send({ ready: true });
    process.on('disconnect', () => process.exit(0));
  } else {
    // From the command line (profiling): runs until stdin closes.
    console.log(JSON.stringify({ ready: true }));
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  }
}
