/**
 * The service-upgrade demonstration (npm run demo).
 *
 * A server binds AFS VL (52) and YFS VL (2503) on one address and enables
 * RXRPC_UPGRADEABLE_SERVICE 52 -> 2503. A client probes it with
 * VL_GetCapabilities and the upgrade flag, learns which service answered, and
 * makes its next call to that service. Then the same against a server that
 * does not offer the upgrade, and, with the userspace Rx peer of the tests
 * (test/rx-peer.ts) as the upgrading server, the client side on its own.
 * Each step is printed, including what the kernel did where its server-side
 * upgrade misbehaves (Debian's stock rxrpc module) and where it does not
 * (the fixed module built from kernel/).
 *
 * Usage: node build/scripts/upgrade-demo.js [kernel] [peer]
 *   kernel  the kernel as server: with upgrade, then without (default)
 *   peer    the userspace Rx peer as the upgrading server (default)
 */
import { release } from 'node:os';
import { AFS, capabilitiesRequest, decodeCapabilities, probeVL } from '../lib/afs';
import { Client } from '../lib/client';
import { RXGEN_OPCODE } from '../lib/constants';
import { RxAbortError } from '../lib/errors';
import { fixedModuleVersion, IncomingCall, Server } from '../lib/server';
import { XdrReader, XdrWriter } from '../lib/xdr';
import { HandlerResult, RxPeer } from '../test/rx-peer';

const address = '127.0.0.1';
const VL = AFS.VL.service; // 52
const YFS_VL = AFS.VL.upgradeTo; // 2503

function say(text: string): void {
  console.log(text);
}

/** The capability words each service reports: YFS VL sets a bit. */
const capabilities = (service: number) => (service === YFS_VL ? [0x1] : [0x0]);
const words = (w: number[]) => `[${w.map((x) => `0x${x.toString(16)}`).join(', ')}]`;

/** Which rxrpc.ko runs: only the fixed module (kernel/) has a version. */
function rxrpcModule(): string {
  const fixed = fixedModuleVersion();
  return fixed ? `the fixed rxrpc module ${fixed} (built from kernel/patches)` : "Debian's stock rxrpc module";
}

/** A VL server that knows one operation, GetCapabilities, in both services. */
async function vlHandler(call: IncomingCall): Promise<Buffer> {
  const r = new XdrReader(await call.request());
  const opcode = r.u32();
  if (opcode !== AFS.VL.getCapabilities) throw new RxAbortError(RXGEN_OPCODE);
  say(`    server: GetCapabilities arrived on service ${call.service} from ${call.peer.address}:${call.peer.port}`);
  return new XdrWriter().array(capabilities(call.service), (w, x) => w.u32(x)).toBuffer();
}

/** Steps 2-5: probe, then call 52 again; the same against the kernel and the userspace peer. */
async function probeAndCall(port: number): Promise<string> {
  const client = new Client();
  try {
    say(`  2. client probes with VL_GetCapabilities on service ${VL}, upgrade flag set (userStatus = 1 on the first DATA packet)`);
    const probe = await probeVL(client, { address, port }, { timeout: 20000 });
    say(`  3. probe answered by service ${probe.service}: ${probe.summary}`);
    if (probe.capabilities) say(`     capabilities: ${words(probe.capabilities)}`);
    if (probe.fallback === 'protocol-error') {
      say(`     the kernel aborted the probe with RX_PROTOCOL_ERROR: its server-side upgrade is broken here (Linux ${release()}, ${rxrpcModule()})`);
    }
    say(`  4. client calls service ${VL} again; the probe taught it to use service ${probe.service}`);
    const next = await client.call({ address, port, service: VL }, capabilitiesRequest(AFS.VL.getCapabilities), { timeout: 20000 });
    say(`  5. answered by service ${next.service}; capabilities ${words(decodeCapabilities(next.data))}`);
    return `probe ${probe.upgraded ? `upgraded to ${probe.service}` : probe.fallback ? `aborted (${probe.fallback})` : `answered by ${probe.service}`}` +
      `, next call to ${VL} answered by ${next.service}`;
  } finally {
    client.close();
  }
}

async function kernelScenario(title: string, port: number, upgrade: boolean): Promise<string> {
  say(`\n${title}`);
  const server = new Server(
    { address, port, services: [VL, YFS_VL], ...(upgrade ? { upgrade: { from: VL, to: YFS_VL } } : {}) },
    vlHandler,
  );
  server.on('warning', (w) => say(`    server warning: ${w.message}`));
  say(`  1. server bound services ${VL} and ${YFS_VL} on ${address}:${port}` +
    (upgrade ? `, RXRPC_UPGRADEABLE_SERVICE ${VL} -> ${YFS_VL}, listening` : ', no upgrade, listening'));
  await new Promise((r) => setImmediate(r));
  try {
    return await probeAndCall(port);
  } finally {
    await server.close();
  }
}

async function peerScenario(title: string, port: number): Promise<string> {
  say(`\n${title}`);
  const peer = await RxPeer.start({
    port, address, mode: 'upgrade', upgrade: { from: VL, to: YFS_VL },
    handler: (service: number, request: Buffer): HandlerResult => {
      if (request.length < 4 || request.readUInt32BE(0) !== AFS.VL.getCapabilities) return { abort: RXGEN_OPCODE };
      say(`    peer: GetCapabilities arrived for service ${service}`);
      return new XdrWriter().array(capabilities(service), (w, x) => w.u32(x)).toBuffer();
    },
  });
  say(`  1. a userspace Rx peer (test/rx-peer.ts, a UDP socket speaking Rx) on ${address}:${port} serves ${VL} and ${YFS_VL},` +
    ` upgrading ${VL} -> ${YFS_VL} as the protocol says; the client is this library on the kernel's AF_RXRPC`);
  try {
    const result = await probeAndCall(port);
    const upgradedIds = peer.packets('out').filter((r) => r.type === 1).map((r) => r.serviceId);
    say(`     the peer's DATA packets carried service ${[...new Set(upgradedIds)].join(', ')}`);
    return result;
  } finally {
    await peer.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const which = new Set(args.length ? args : ['kernel', 'peer']);
  for (const a of which) if (a !== 'kernel' && a !== 'peer') throw new Error(`unknown scenario '${a}' (kernel, peer)`);
  say(`Rx service upgrade on Linux ${release()}, ${rxrpcModule()}`);
  const summary: string[] = [];
  if (which.has('kernel')) {
    summary.push(`kernel server with upgrade: ${await kernelScenario('A. The kernel as a server that offers the upgrade', 17003, true)}`);
    summary.push(`kernel server without upgrade: ${await kernelScenario('B. The kernel as a server that does not', 17004, false)}`);
  }
  if (which.has('peer')) {
    summary.push(`userspace Rx peer with upgrade: ${await peerScenario('C. A userspace Rx peer that upgrades correctly', 17005)}`);
  }
  say(`\nIn short (Linux ${release()}, ${rxrpcModule()}):`);
  for (const line of summary) say(`  ${line}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
