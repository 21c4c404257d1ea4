/**
 * The service-upgrade demonstration (npm run demo).
 *
 * A server binds AFS VL (52) and YFS VL (2503) on one address and enables
 * RXRPC_UPGRADEABLE_SERVICE 52 -> 2503. A client probes it with
 * VL_GetCapabilities and the upgrade flag, learns which service answered, and
 * makes its next call to that service. Then the same against a server that
 * does not offer the upgrade. Each step is printed, including what the kernel
 * did where its server-side upgrade misbehaves.
 */
import { release } from 'node:os';
import { AFS, capabilitiesRequest, decodeCapabilities, probeVL } from '../lib/afs';
import { Client } from '../lib/client';
import { RXGEN_OPCODE } from '../lib/constants';
import { RxAbortError } from '../lib/errors';
import { IncomingCall, Server } from '../lib/server';
import { XdrReader, XdrWriter } from '../lib/xdr';

const address = '127.0.0.1';
const VL = AFS.VL.service; // 52
const YFS_VL = AFS.VL.upgradeTo; // 2503

function say(text: string): void {
  console.log(text);
}

/** A VL server that knows one operation, GetCapabilities, in both services. */
async function vlHandler(call: IncomingCall): Promise<Buffer> {
  const r = new XdrReader(await call.request());
  const opcode = r.u32();
  if (opcode !== AFS.VL.getCapabilities) throw new RxAbortError(RXGEN_OPCODE);
  // The reply may differ between the services: YFS VL reports a capability bit.
  const words = call.service === YFS_VL ? [0x1] : [0x0];
  say(`    server: GetCapabilities arrived on service ${call.service} from ${call.peer.address}:${call.peer.port}`);
  return new XdrWriter().array(words, (w, x) => w.u32(x)).toBuffer();
}

async function scenario(title: string, port: number, upgrade: boolean): Promise<void> {
  say(`\n${title}`);
  const server = new Server(
    { address, port, services: [VL, YFS_VL], ...(upgrade ? { upgrade: { from: VL, to: YFS_VL } } : {}) },
    vlHandler,
  );
  server.on('warning', (w) => say(`    server warning: ${w.message}`));
  say(`  1. server bound services ${VL} and ${YFS_VL} on ${address}:${port}` +
    (upgrade ? `, RXRPC_UPGRADEABLE_SERVICE ${VL} -> ${YFS_VL}, listening` : ', no upgrade, listening'));
  await new Promise((r) => setImmediate(r));

  const client = new Client();
  try {
    say(`  2. client probes with VL_GetCapabilities on service ${VL}, upgrade flag set (userStatus = 1 on the first DATA packet)`);
    const probe = await probeVL(client, { address, port }, { timeout: 20000 });
    say(`  3. probe answered by service ${probe.service}: ${probe.summary}`);
    if (probe.capabilities) say(`     capabilities: [${probe.capabilities.map((w) => `0x${w.toString(16)}`).join(', ')}]`);
    if (probe.fallback === 'protocol-error') {
      say(`     the kernel aborted the probe with RX_PROTOCOL_ERROR: its server-side upgrade is broken here (Linux ${release()})`);
    }
    say(`  4. client calls service ${VL} again; the probe taught it to use service ${probe.service}`);
    const next = await client.call({ address, port, service: VL }, capabilitiesRequest(AFS.VL.getCapabilities), { timeout: 20000 });
    say(`  5. answered by service ${next.service}; capabilities [${decodeCapabilities(next.data).map((w) => `0x${w.toString(16)}`).join(', ')}]`);
  } finally {
    client.close();
    await server.close();
  }
}

async function main(): Promise<void> {
  say(`Rx service upgrade on Linux ${release()}`);
  await scenario('A. A server that offers the upgrade', 17003, true);
  await scenario('B. A server that does not', 17004, false);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
