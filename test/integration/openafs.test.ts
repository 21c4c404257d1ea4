/**
 * A real OpenAFS VL server (Debian's openafs-dbserver) started inside the VM,
 * probed and queried through the library. ubik ignores 127.x addresses, so
 * the guest gets 198.18.0.1 on lo, a matching hostname and /etc/hosts.
 */
import { probeVL, VL_NOENT } from '../../lib/afs';
import { Client } from '../../lib/client';
import { RXGEN_OPCODE } from '../../lib/constants';
import {
  decodeAddrs, decodeStats, getAddrsRequest, getEntryByNameNRequest, getStatsRequest, probeRequest, startVlserver, VL_ADDRESS, Vlserver,
} from '../vl';

const dest = { address: VL_ADDRESS, port: 7003, service: 52 };
let vlserver: Vlserver | undefined;
let quorumSeconds = 0;

beforeAll(async () => {
  vlserver = await startVlserver('/tmp/openafs');
  quorumSeconds = vlserver.quorumSeconds;
}, 120000);

afterAll(async () => {
  await vlserver?.stop();
});

describe('OpenAFS vlserver', () => {
  let client: Client;
  beforeEach(() => {
    client = new Client();
  });
  afterEach(() => client.close());

  test('reached quorum', () => {
    expect(quorumSeconds).toBeGreaterThan(0);
  });

  test('VL GetCapabilities probe: OpenAFS 1.8 aborts it with RXGEN_OPCODE, which means no upgrade', async () => {
    const result = await probeVL(client, { address: VL_ADDRESS }, { timeout: 20000 });
    expect(result).toMatchObject({ service: 52, upgraded: false, fallback: 'not-supported', abortCode: RXGEN_OPCODE });
    expect(result.capabilities).toBeUndefined();
  });

  test('VL_ProbeServer answers with an empty body', async () => {
    const r = await client.call(dest, probeRequest(), { timeout: 20000 });
    expect(r).toMatchObject({ service: 52, data: Buffer.alloc(0) });
  });

  test('VL_GetStats describes a fresh database (header fields arrive byte-swapped)', async () => {
    const { data, service } = await client.call(dest, getStatsRequest(), { timeout: 20000 });
    expect(service).toBe(52);
    const stats = decodeStats(data);
    // OpenAFS keeps the VL header in network byte order and XDR-encodes it
    // once more, so on a little-endian server each field arrives swapped.
    const swap = (v: number) => Buffer.from(Uint32Array.of(v).buffer).readUInt32BE(0);
    expect(swap(stats.vldbversion)).toBe(3);
    expect(swap(stats.maxVolumeId)).toBe(0x20000000); // the first volume ID a new database hands out
    expect(swap(stats.eofPtr)).toBe(swap(stats.headersize)); // nothing allocated after the header
    expect(stats.totalEntries).toEqual([0, 0, 0]);
    expect(stats.requests.reduce((a, b) => a + b, 0)).toBeGreaterThan(0); // this and earlier calls were counted
  });

  test('VL_GetAddrs of a fresh database lists no file servers', async () => {
    const { data } = await client.call(dest, getAddrsRequest(), { timeout: 20000 });
    const addrs = decodeAddrs(data);
    expect(addrs.nentries).toBe(0);
    expect(addrs.addrs).toEqual([]);
  });

  test('VL_GetEntryByNameN of a volume that does not exist is aborted with VL_NOENT', async () => {
    await expect(client.call(dest, getEntryByNameNRequest('no.such.volume'), { timeout: 20000 })).rejects.toMatchObject({
      code: 'ERR_RX_ABORT', abortCode: VL_NOENT, abortName: 'VL_NOENT',
    });
  });
});
