import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { AFS, IncomingCall, RXGEN_OPCODE, RxAbortError, Server, VL_NOENT, XdrWriter } from '../../lib';
import { loadedModule } from './fixed-module';
import { cProgram } from './helpers';

// The kernel's own AFS client (kafs.ko) as a real upgrading client: mounting a
// volume makes it probe the cell's VL server with VL_GetCapabilities on
// service 52 with the upgrade flag, then go on with whichever service
// answered: a YFS VL server (2503) is first asked for the cell's canonical
// name (YVL_GetCellName, an operation only YFS VL has), then the volume is
// looked up. The VL server here is a Server of this library with upgrade
// 52 -> 2503; it knows no volume (VL_NOENT), so the mount fails.
const mod = loadedModule();
const which = mod.fixed ? `fixed rxrpc module (${mod.version})` : 'stock rxrpc module';
const address = '127.0.0.1';
const port = 18800;
const cell = 'kafs-upgrade.test';
const GET_ENTRY_BY_NAME_U = 527;
const YVL_GET_CELL_NAME = 64014;

interface Seen { service: number; opcode: number }

/** What /proc/net/afs/CELL/vlservers says of the probe: " probe: fl=2 e=0 ac=0 out=0". */
function probeState(text: string): { flags: number; error: number; abortCode: number } {
  const m = /^ probe: fl=([0-9a-f]+) e=(-?\d+) ac=(-?\d+)/m.exec(text);
  if (!m) throw new Error(`no probe line in /proc/net/afs/${cell}/vlservers:\n${text}`);
  return { flags: parseInt(m[1], 16), error: Number(m[2]), abortCode: Number(m[3]) };
}
const PROBE_IS_YFS = 0x02; // AFS_VLSERVER_PROBE_IS_YFS in fs/afs/internal.h

/**
 * kafs on 7.x looks a cell up in the DNS on its first use even when its VL
 * servers were given in /proc/net/afs/cells, and a failed lookup fails the
 * mount before any VL call (fs/afs/cell.c: afs_lookup_cell, afs_update_cell;
 * seen on 7.3.4: no call reached the server). The VM has no DNS, so the
 * answer is given beforehand: a dns_resolver key "afsdb:CELL" in root's user
 * session keyring, which the resolver's searches reach, holding the server
 * list as the kernel's own resolver (key.dns_resolver) would encode it
 * (include/uapi/linux/dns_resolver.h, v1: one server, one IPv4 address).
 * 6.1 and 6.12 go by the addresses given.
 */
function dnsAnswer(): Buffer {
  const name = Buffer.from(`vl.${cell}`);
  const SRV = 4, GOOD = 1, UDP = 1, IPV4 = 0;
  const server = Buffer.alloc(12);
  server.writeUInt16LE(name.length, 0);
  server.writeUInt16LE(port, 6); // priority and weight 0
  server.set([SRV, GOOD, UDP, 1], 8);
  return Buffer.concat([Buffer.from([0, 0, 1, SRV, GOOD, 1]), server, name, Buffer.from([IPV4, ...address.split('.').map(Number)])]);
}

describe(`kafs (the kernel's AFS client) probing a Server with upgrade 52 -> 2503, on the ${which}`, () => {
  const seen: Seen[] = [];
  let server: Server;
  let mount: { code: number | null; stderr: string };
  let vlservers: string;

  beforeAll(async () => {
    if (!existsSync('/proc/net/afs')) {
      // kafs.ko is in the VM's initramfs (scripts/vm/kernel.sh); it loads on top of whichever rxrpc.ko is loaded.
      const modules = process.env.RXRPC_VM_MODULES;
      if (!modules) throw new Error('kafs.ko is not loaded and RXRPC_VM_MODULES (the VM runner\'s module tree) is not set');
      execFileSync('modprobe', ['-d', modules, 'kafs'], { stdio: 'inherit' });
    }
    server = new Server({ address, port, services: [AFS.VL.service, AFS.VL.upgradeTo], upgrade: { from: 52, to: 2503 } },
      async (call: IncomingCall) => {
        const request = await call.request();
        const opcode = request.readUInt32BE(0);
        seen.push({ service: call.service, opcode });
        if (opcode === AFS.VL.getCapabilities) {
          return new XdrWriter().array([call.service === 2503 ? 1 : 0], (w, x) => w.u32(x)).toBuffer();
        }
        if (opcode === YVL_GET_CELL_NAME && call.service === 2503) return new XdrWriter().string(cell).toBuffer();
        throw new RxAbortError(opcode === GET_ENTRY_BY_NAME_U ? VL_NOENT : RXGEN_OPCODE);
      });
    server.on('warning', () => {});
    if (Number(release().split('.')[0]) >= 7) {
      execFileSync(cProgram('test/c/add-key.c', 'build/test/c/add-key'), ['dns_resolver', `afsdb:${cell}`], { input: dnsAnswer() });
    }
    writeFileSync('/proc/net/afs/cells', `add ${cell} ${address}+${port}`);
    const dir = mkdtempSync('/tmp/kafs-');
    mount = await new Promise((resolve) => {
      execFile('mount', ['-t', 'afs', `%${cell}:root.cell.`, dir], { timeout: 120000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }));
    });
    vlservers = readFileSync(`/proc/net/afs/${cell}/vlservers`, 'utf8');
  }, 180000);

  afterAll(async () => {
    await server?.close({ timeout: 1000 });
  });

  test('kafs probes with VL_GetCapabilities and then looks the volume up (VL_GetEntryByNameU); the mount fails: no such volume', () => {
    if (seen.length === 0) throw new Error(`no VL call reached the server; mount ended with ${mount.code}: ${mount.stderr.trim()}`);
    expect(seen.map((s) => s.opcode)).toContain(AFS.VL.getCapabilities);
    expect(seen.map((s) => s.opcode)).toContain(GET_ENTRY_BY_NAME_U);
    expect(seen.findIndex((s) => s.opcode === AFS.VL.getCapabilities))
      .toBeLessThan(seen.findIndex((s) => s.opcode === GET_ENTRY_BY_NAME_U));
    expect(mount.code).not.toBe(0);
  });

  const services = (opcode: number) => [...new Set(seen.filter((s) => s.opcode === opcode).map((s) => s.service))];
  if (mod.fixed) {
    test('the probe is answered by 2503 (the server sees 2503), kafs marks the server YFS and goes on with 2503', () => {
      const probe = probeState(vlservers);
      expect({ error: probe.error, isYfs: (probe.flags & PROBE_IS_YFS) !== 0 }).toEqual({ error: 0, isYfs: true });
      expect(seen.filter((s) => s.opcode === AFS.VL.getCapabilities).map((s) => s.service)).toEqual([2503]);
      expect(services(YVL_GET_CELL_NAME)).toEqual([2503]);
      expect(services(GET_ENTRY_BY_NAME_U)).toEqual([2503]);
    });
  } else {
    test('the probe is aborted with RX_PROTOCOL_ERROR (kafs sees ECONNABORTED), and kafs goes on with 52', () => {
      const probe = probeState(vlservers);
      expect({ error: probe.error, abortCode: probe.abortCode, isYfs: (probe.flags & PROBE_IS_YFS) !== 0 })
        .toEqual({ error: -103, abortCode: -5, isYfs: false });
      expect(services(YVL_GET_CELL_NAME)).toEqual([]);
      expect(services(GET_ENTRY_BY_NAME_U)).toEqual([52]);
    });
  }
});
