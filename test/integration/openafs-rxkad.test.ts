/**
 * rxkad against a real server: OpenAFS's vlserver (Debian's openafs-dbserver)
 * started with authentication required, its key installed with OpenAFS's own
 * asetkey from a known DES key, called by the Node client with a ticket
 * minted from that key for a user in its UserList.
 *
 * The vlserver lives at 198.18.0.2 (ubik ignores 127.x) with a hostname and
 * /etc/hosts of its own; asetkey writes into /etc/openafs/server, which the
 * test bind-mounts from /tmp. Everything is undone afterwards, so that
 * openafs.test.ts can set up its own vlserver in the same VM.
 */
import { ChildProcess, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Client } from '../../lib/client';
import { RxAbortError } from '../../lib/errors';
import { SecurityLevel } from '../../lib/security';
import { XdrReader } from '../../lib/xdr';
import { mintToken, randomDesKey } from '../rxkad/ticket';
import { getNewVolumeIdRequest } from '../vl';
import { keysGone, serials } from './keys';
import { startVlserver } from './vlserver';

const VL_ADDRESS = '198.18.0.2';
const CELL = 'auth.rxrpc';
const KVNO = 3;
const VL_PERM = 363546;
const dir = '/tmp/openafs-rxkad';
const dest = { address: VL_ADDRESS, port: 7003, service: 52 };
const cellKey = randomDesKey();
const undo: Array<() => void> = [];
let vlserver: ChildProcess | undefined;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until nothing holds UDP 7003 (openafs.test.ts's vlserver may still be exiting). */
async function portFree(): Promise<void> {
  for (let i = 0; ; i++) {
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(7003, '0.0.0.0', () => resolve(true));
    });
    udp.close();
    if (ok) return;
    if (i > 60) throw new Error('UDP port 7003 stays in use');
    await sleep(500);
  }
}

/** A token for `name`, sealed with the cell's key, for the kvno asetkey installed it under. */
const tokenFor = (name: string) => mintToken({ serverKey: cellKey, kvno: KVNO, name, realm: '' });

beforeAll(async () => {
  const server = `${dir}/server`;
  mkdirSync(server, { recursive: true });
  mkdirSync(`${dir}/db`, { recursive: true });
  writeFileSync(`${server}/ThisCell`, `${CELL}\n`);
  writeFileSync(`${server}/CellServDB`, `>${CELL} #test cell\n${VL_ADDRESS} #vlauth.test\n`);
  writeFileSync(`${server}/UserList`, 'admin\n');
  writeFileSync(`${dir}/hosts`, `127.0.0.1 localhost\n${VL_ADDRESS} vlauth.test\n`);
  sh('ip', ['addr', 'add', `${VL_ADDRESS}/32`, 'dev', 'lo']);
  undo.push(() => sh('ip', ['addr', 'del', `${VL_ADDRESS}/32`, 'dev', 'lo']));
  // Through /proc: the hostname tool refuses to restore a name like "(none)".
  const HOSTNAME = '/proc/sys/kernel/hostname';
  const oldName = readFileSync(HOSTNAME, 'utf8').trim();
  writeFileSync(HOSTNAME, 'vlauth.test');
  undo.push(() => writeFileSync(HOSTNAME, oldName));
  sh('mount', ['--bind', `${dir}/hosts`, '/etc/hosts']);
  undo.push(() => sh('umount', ['/etc/hosts']));
  sh('mount', ['--bind', server, '/etc/openafs/server']);
  undo.push(() => sh('umount', ['/etc/openafs/server']));
  // OpenAFS's own tool writes the KeyFile: the cell's rxkad key, by kvno.
  sh('asetkey', ['add', String(KVNO), cellKey.toString('hex')]);
  expect(sh('asetkey', ['list'])).toContain(`kvno    ${KVNO}: key is: ${cellKey.toString('hex')}`);
  await portFree();
  // No -noauth: privileged RPCs need a superuser (UserList) over rxkad.
  vlserver = (await startVlserver(VL_ADDRESS, ['-config', server, '-database', `${dir}/db/vldb`, '-logfile', `${dir}/VLLog`])).process;
}, 150000);

afterAll(async () => {
  if (vlserver && vlserver.exitCode === null) {
    const exited = new Promise((r) => vlserver!.once('exit', r));
    vlserver.kill();
    await exited;
  }
  for (const step of undo.reverse()) {
    try {
      step();
    } catch {
      // best effort: the next step still runs
    }
  }
});

describe('rxkad against OpenAFS vlserver with authentication', () => {
  let client: Client;
  let before: Set<string>;
  beforeEach(() => {
    before = serials();
    client = new Client();
  });
  afterEach(async () => {
    client.close();
    await keysGone(before);
  });

  test('rxkad: OpenAFS vlserver refuses VL_GetNewVolumeId without a token (VL_PERM)', async () => {
    await expect(client.call(dest, getNewVolumeIdRequest(1), { timeout: 20000 })).rejects.toEqual(
      expect.objectContaining({ name: 'RxAbortError', abortCode: VL_PERM, abortName: 'VL_PERM' }),
    );
  });

  test.each(['clear', 'encrypt'] as SecurityLevel[])(
    'rxkad: OpenAFS vlserver answers VL_GetNewVolumeId to the Node client with a ticket minted from its key (level %s)',
    async (level) => {
      const reply = await client.call(dest, getNewVolumeIdRequest(1), { timeout: 20000, security: { token: tokenFor('admin'), level } });
      const r = new XdrReader(reply.data);
      const id = r.u32();
      r.end();
      // A fresh database hands out IDs from 536870912 (0x20000000) on.
      expect(id).toBeGreaterThanOrEqual(0x20000000);
    },
  );

  test('rxkad: OpenAFS vlserver authenticates a user not in UserList but refuses them the privileged RPC', async () => {
    const err = await client.call(dest, getNewVolumeIdRequest(1), { timeout: 20000, security: { token: tokenFor('nobody'), level: 'auth' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RxAbortError);
    expect(err).toMatchObject({ abortCode: VL_PERM });
  });

  test('rxkad: OpenAFS vlserver refuses a ticket sealed with another key (RXKADBADTICKET)', async () => {
    const forged = mintToken({ serverKey: randomDesKey(), kvno: KVNO, name: 'admin' });
    await expect(client.call(dest, getNewVolumeIdRequest(1), { timeout: 20000, security: { token: forged, level: 'auth' } }))
      .rejects.toEqual(expect.objectContaining({ abortName: 'RXKADBADTICKET' }));
  });
});
