/**
 * The generator end to end, in the VM: interfaces/vl.xg is generated to
 * TypeScript during the run, compiled and loaded; its client talks to
 * OpenAFS's vlserver, and OpenAFS's vos talks to a Node VL server made of its
 * handler. A split-call interface is generated too, its client streaming to
 * its server through the kernel.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { Client } from '../../lib/client';
import { RxAbortError } from '../../lib/errors';
import { generateFile } from '../../lib/rxgen';
import { Server } from '../../lib/server';
import { setUpCell, startVlserver, VL_ADDRESS, Vlserver } from '../vl';
import { freshPort } from './helpers';

const LIB = resolve(__dirname, '../../lib/index');
const ROOT = resolve(__dirname, '../../..');
const run = promisify(execFile);

// The generated modules are loaded at run time: their types are not known to this file.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Module = Record<string, any>;

/** Generates TypeScript from an interface file, strips its types and loads it. */
function load(xg: string): Module {
  const dir = mkdtempSync('/tmp/rxgen-');
  const [file] = generateFile(xg, dir, { importFrom: LIB });
  const js = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 }, fileName: file,
  }).outputText;
  const out = file.replace(/\.ts$/, '.js');
  writeFileSync(out, js);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(out);
}

const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const UUID = { time_low: 0x12345678, time_mid: 0x9abc, time_hi_and_version: 0xdef0, clock_seq_hi_and_reserved: 0x81, clock_seq_low: 0x02, node: [0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5] };
const UUID_TEXT = '12345678-9abc-def0-81-02-a0b1c2d3e4f5';

let vl: Module;

beforeAll(() => {
  vl = load(join(ROOT, 'interfaces', 'vl.xg'));
}, 180000);

function entry(name: string, rw: number, sites: Array<[number, number, number]>) {
  const pad = (xs: number[]) => [...xs, ...Array(13 - xs.length).fill(0)];
  return {
    name, nServers: sites.length,
    serverNumber: pad(sites.map((s) => s[0])), serverPartition: pad(sites.map((s) => s[1])), serverFlags: pad(sites.map((s) => s[2])),
    volumeId: [rw, rw + 1, 0], cloneId: 0, flags: vl.VLF_RWEXISTS | vl.VLF_ROEXISTS,
    matchindex: 0, spares2: 0, spares3: 0, spares4: 0, spares5: 0, spares6: 0, spares7: 0, spares8: 0, spares9: 0,
  };
}

describe('rxgen: the generated VL client against OpenAFS vlserver', () => {
  let vlserver: Vlserver | undefined;
  let client: Client;
  const dest = { address: VL_ADDRESS, port: 7003, service: 52 };
  const opts = { timeout: 20000 };
  const FS = ip('169.254.7.1');

  beforeAll(async () => {
    vlserver = await startVlserver('/tmp/openafs-rxgen');
  }, 120000);
  afterAll(async () => {
    await vlserver?.stop();
  });
  beforeEach(() => {
    client = new Client();
  });
  afterEach(() => client.close());

  test('rxgen: VL_ListAttributesN2 of a fresh database lists nothing and ends the listing', async () => {
    const all = { Mask: 0, server: 0, partition: 0, spare: 0, volumeid: 0, flag: 0 };
    await expect(vl.VL_ListAttributesN2(client, dest, all, '', 0, opts)).resolves.toEqual({ nentries: 0, blkentries: [], nextstartindex: -1 });
  });

  test('rxgen: VL_GetEntryByNameU of a volume that does not exist is aborted with VL_NOENT', async () => {
    const err = await vl.VL_GetEntryByNameU(client, dest, 'no.such.volume', opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RxAbortError);
    expect(err).toMatchObject({ abortCode: vl.VL_NOENT, abortName: 'VL_NOENT' });
    expect(vl.VL_errorTable.get((err as RxAbortError).abortCode)).toEqual({ name: 'VL_NOENT', message: 'no such volume in the VLDB' });
  });

  test('rxgen: VL_GetAddrsU of a server index nobody registered is aborted with VL_NOENT', async () => {
    await expect(vl.VL_GetAddrsU(client, dest, { Mask: vl.VLADDR_INDEX, ipaddr: 0, index: 1, spare: 0, uuid: UUID }, opts))
      .rejects.toMatchObject({ abortName: 'VL_NOENT' });
  });

  test('rxgen: VL_RegisterAddrs, then VL_GetAddrsU by index, by UUID and by address returns the server', async () => {
    await vl.VL_RegisterAddrs(client, dest, UUID, 0, [FS], opts);
    const byIndex = await vl.VL_GetAddrsU(client, dest, { Mask: vl.VLADDR_INDEX, ipaddr: 0, index: 1, spare: 0, uuid: UUID }, opts);
    expect(byIndex).toEqual({ uuidp1: UUID, uniquifier: expect.any(Number), nentries: 1, blkaddrs: [FS] });
    const byUuid = await vl.VL_GetAddrsU(client, dest, { Mask: vl.VLADDR_UUID, ipaddr: 0, index: 0, spare: 0, uuid: UUID }, opts);
    expect(byUuid).toEqual(byIndex);
    const byAddr = await vl.VL_GetAddrsU(client, dest, { Mask: vl.VLADDR_IPADDR, ipaddr: FS, index: 0, spare: 0, uuid: UUID }, opts);
    expect(byAddr).toEqual(byIndex);
    const all = await vl.VL_GetAddrs(client, dest, 0, 0, opts);
    expect(all.nentries).toBe(1);
  });

  test('rxgen: an entry made with VL_CreateEntryN is listed by VL_ListAttributesN2 and found by VL_GetEntryByNameU', async () => {
    await vl.VL_CreateEntryN(client, dest, entry('rxgen.test', 536870920, [[FS, 0, vl.VLSF_RWVOL]]), opts);
    const list = await vl.VL_ListAttributesN2(client, dest, { Mask: 0, server: 0, partition: 0, spare: 0, volumeid: 0, flag: 0 }, '', 0, opts);
    expect(list).toMatchObject({ nentries: 1, nextstartindex: -1 });
    expect(list.blkentries[0]).toMatchObject({ name: 'rxgen.test', nServers: 1, volumeId: [536870920, 536870921, 0] });
    const { entry: u } = await vl.VL_GetEntryByNameU(client, dest, 'rxgen.test', opts);
    expect(u).toMatchObject({ name: 'rxgen.test', nServers: 1, volumeId: [536870920, 536870921, 0] });
    // The site names the registered server by its UUID.
    expect(u.serverNumber[0]).toEqual(UUID);
    expect(u.serverFlags[0] & (vl.VLSF_RWVOL | vl.VLSF_UUID)).toBe(vl.VLSF_RWVOL | vl.VLSF_UUID);
  });
});

describe('rxgen: OpenAFS vos against a Node VL server made of the generated handler', () => {
  let server: Server | undefined;
  const calls: string[] = [];
  const servers = [
    { uuid: UUID, addrs: [ip('169.254.1.1'), ip('169.254.1.2')] },
    { uuid: { ...UUID, time_low: 1 }, addrs: [ip('169.254.2.1')] },
  ];
  let entries: unknown[] = [];

  beforeAll(() => {
    setUpCell('/tmp/openafs-rxgen');
    entries = [
      entry('zeta.vol', 536870930, [[ip('169.254.2.1'), 1, vl.VLSF_ROVOL]]),
      entry('alpha.vol', 536870912, [[ip('169.254.1.1'), 0, vl.VLSF_RWVOL], [ip('169.254.2.1'), 1, vl.VLSF_ROVOL]]),
    ];
    const impl = {
      GetAddrs(Handle: number, spare2: number) {
        calls.push(`GetAddrs(${Handle}, ${spare2})`);
        return {
          spare3: { CallBackVersion: 0, ExpirationTime: 0, CallBackType: 0, Handle: 0 },
          nentries: servers.length, blkaddrs: servers.map((_s, i) => (0xff000000 + i) >>> 0),
        };
      },
      GetAddrsU(attrs: { Mask: number; index: number }) {
        calls.push(`GetAddrsU(index ${attrs.index})`);
        const s = servers[attrs.index - 1];
        if (attrs.Mask !== vl.VLADDR_INDEX || !s) throw new RxAbortError(vl.VL_INDEXERANGE);
        return { uuidp1: s.uuid, uniquifier: 1, nentries: s.addrs.length, blkaddrs: s.addrs };
      },
      ListAttributesN2(attrs: { Mask: number }, volumename: string, startindex: number) {
        calls.push(`ListAttributesN2(Mask ${attrs.Mask}, "${volumename}", ${startindex})`);
        return { nentries: entries.length, blkentries: entries, nextstartindex: -1 };
      },
    };
    server = new Server({ address: VL_ADDRESS, port: 7003, services: 52 }, vl.VL_handler(impl));
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  const vos = (...args: string[]) => run('vos', [...args, '-noauth', '-noresolve', '-config', '/tmp/openafs-rxgen/server'], { timeout: 90000 });

  test('rxgen: vos listaddrs lists the servers that GetAddrs and GetAddrsU return', async () => {
    const { stdout } = await vos('listaddrs', '-printuuid');
    expect(stdout.split('\n')).toEqual([
      `UUID: ${UUID_TEXT}`, '169.254.1.1', '169.254.1.2', '',
      'UUID: 00000001-9abc-def0-81-02-a0b1c2d3e4f5', '169.254.2.1', '', '',
    ]);
    expect(calls).toEqual(['GetAddrs(0, 0)', 'GetAddrsU(index 1)', 'GetAddrsU(index 2)']);
  }, 120000);

  test('rxgen: vos listvldb prints the entries ListAttributesN2 returns, sorted by name', async () => {
    const { stdout } = await vos('listvldb');
    const lines = stdout.split('\n').map((l) => l.trimEnd());
    expect(lines[0]).toBe('VLDB entries for all servers');
    const alpha = lines.indexOf('alpha.vol');
    expect(alpha).toBeGreaterThan(0);
    expect(lines.slice(alpha, alpha + 5)).toEqual([
      'alpha.vol',
      '    RWrite: 536870912     ROnly: 536870913', // "%-10u", as vos prints it
      '    number of sites -> 2',
      '       server 169.254.1.1 partition /vicepa RW Site',
      '       server 169.254.2.1 partition /vicepb RO Site',
    ]);
    expect(lines.indexOf('zeta.vol')).toBeGreaterThan(alpha);
    expect(lines).toContain('Total entries: 2');
    expect(calls).toEqual(['ListAttributesN2(Mask 0, "", 0)']);
  }, 120000);
});

describe('rxgen: a generated client and server with split calls, through the kernel', () => {
  const XG = `/* Split calls: data streams between the arguments and the results. */
package ST_
splitprefix IN=Begin OUT=Finish;
const ST_MAX = 64;
Fetch(IN afs_int32 length, OUT afs_int32 *sum) split = 1;
Store(IN afs_int32 length, OUT afs_int32 *sum, string note<ST_MAX>) split = 2;
Echo(IN string s<ST_MAX>, OUT string t<ST_MAX>) = 3;
`;
  let st: Module;
  let server: Server | undefined;
  let client: Client;
  const port = freshPort();
  const dest = { address: '127.0.0.1', port, service: 4711 };
  const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
  const sum = (b: Buffer) => b.reduce((a, x) => a + x, 0);

  beforeAll(() => {
    const dir = mkdtempSync('/tmp/rxgen-st-');
    writeFileSync(join(dir, 'st.xg'), XG);
    st = load(join(dir, 'st.xg'));
    server = new Server({ address: '127.0.0.1', port, services: 4711 }, st.ST_handler({
      async Fetch(length: number, call: { write(b: Uint8Array): Promise<void> }) {
        const data = pattern(length);
        for (let at = 0; at < data.length; at += 10000) await call.write(data.subarray(at, at + 10000));
        return { sum: sum(data) };
      },
      async Store(length: number, call: { read(n: number): Promise<Buffer> }) {
        const data = await call.read(length);
        return { sum: sum(data), note: `stored ${data.length}` };
      },
      Echo(s: string) {
        return { t: s.toUpperCase() };
      },
    }));
    client = new Client();
  }, 180000);
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  test('rxgen: a split call reads data the server streams before the results', async () => {
    const call = await st.BeginST_Fetch(client, dest, 100000, { timeout: 30000 });
    const data = await call.read(100000);
    expect(data.equals(pattern(100000))).toBe(true);
    await expect(st.FinishST_Fetch(call)).resolves.toEqual({ sum: sum(pattern(100000)) });
  }, 60000);

  test('rxgen: a split call streams data to the server after the arguments', async () => {
    const call = await st.BeginST_Store(client, dest, 70000, { timeout: 30000 });
    const data = pattern(70000);
    for (let at = 0; at < data.length; at += 8192) await call.write(data.subarray(at, at + 8192));
    await expect(st.FinishST_Store(call)).resolves.toEqual({ sum: sum(data), note: 'stored 70000' });
  }, 60000);

  test('rxgen: an ordinary call of the same interface, and an unknown opcode aborted with RXGEN_OPCODE', async () => {
    await expect(st.ST_Echo(client, dest, 'hello', { timeout: 30000 })).resolves.toEqual({ t: 'HELLO' });
    await expect(client.call(dest, Buffer.from([0, 0, 0, 9]), { timeout: 30000 })).rejects.toMatchObject({ abortName: 'RXGEN_OPCODE' });
  }, 60000);
});
