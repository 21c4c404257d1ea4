/**
 * The AFS services that use service upgrade, and ready-made GetCapabilities
 * probes for them. GetCapabilities exists in both the original and the
 * upgraded service with the same request, which is what makes it the probe.
 */
import { Client, ProbeResult } from './client';
import { checkBytes, checkObject, InvalidArgTypeError, OutOfRangeError } from './errors';
import { checkDestination, Destination } from './services';
import { XdrReader, XdrWriter } from './xdr';

/** Service IDs and default ports. */
export const AFS = {
  VL: { service: 52, port: 7003, upgradeTo: 2503, getCapabilities: 65537 },
  FS: { service: 1, port: 7000, upgradeTo: 2500, getCapabilities: 65540 },
} as const;
export const YFS_VL_SERVICE = 2503;
export const YFS_FS_SERVICE = 2500;

/** VL error codes (OpenAFS src/vlserver/vl_errors.et), for abort names. */
export const VL_IDEXIST = 363520;
export const VL_NOENT = 363524;

/** The GetCapabilities request: the opcode alone. */
export function capabilitiesRequest(opcode: number): Buffer {
  if (typeof opcode !== 'number') throw new InvalidArgTypeError('opcode', 'of type number', opcode);
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0xffffffff) {
    throw new OutOfRangeError('opcode', 'an integer from 0 to 4294967295', opcode);
  }
  return new XdrWriter().u32(opcode).toBuffer();
}

/** The GetCapabilities reply: a counted array of capability words. */
export function decodeCapabilities(reply: Uint8Array): number[] {
  const r = new XdrReader(checkBytes(reply, 'reply'));
  const words = r.array((x) => x.u32(), 1024);
  r.end();
  return words;
}

export interface CapabilitiesProbe extends ProbeResult {
  /** The capability words, when the server answered GetCapabilities. */
  capabilities?: number[];
}

/** Every check is made in here: bad arguments reject, as the probe's own failures do. */
async function probeCapabilities(client: Client, target: unknown, kind: 'VL' | 'FS',
  options: { timeout?: number; signal?: AbortSignal }): Promise<CapabilitiesProbe> {
  if (!(client instanceof Client)) throw new InvalidArgTypeError('client', 'a Client', client);
  const spec = AFS[kind];
  const destination = withPort(target, spec.port);
  checkObject(options, 'options');
  let capabilities: number[] | undefined;
  // A reply that is not a capability list is not learned: the server is not what it was taken for.
  const result: CapabilitiesProbe = await client.probeChecked(destination, {
    service: spec.service,
    upgradeTo: spec.upgradeTo,
    request: capabilitiesRequest(spec.getCapabilities),
    timeout: options.timeout,
    signal: options.signal,
  }, (reply) => {
    capabilities = decodeCapabilities(reply);
  });
  if (capabilities) result.capabilities = capabilities;
  return result;
}

/** Probes a VL server (52 -> 2503) with VL_GetCapabilities. */
export function probeVL(client: Client, destination: Partial<Destination> & { address: string },
  options: { timeout?: number; signal?: AbortSignal } = {}): Promise<CapabilitiesProbe> {
  return probeCapabilities(client, destination, 'VL', options);
}

/** Probes a file server (1 -> 2500) with FS GetCapabilities. */
export function probeFS(client: Client, destination: Partial<Destination> & { address: string },
  options: { timeout?: number; signal?: AbortSignal } = {}): Promise<CapabilitiesProbe> {
  return probeCapabilities(client, destination, 'FS', options);
}

/** The destination with the service's default port when it gives none (a port of undefined included). */
function withPort(destination: unknown, port: number): Destination {
  checkObject(destination, 'destination', 'an object { address, port? }');
  const d = destination as Partial<Destination>;
  return checkDestination({ address: d.address, port: d.port === undefined ? port : d.port });
}
