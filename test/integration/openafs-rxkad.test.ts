/**
 * rxkad against a real server: OpenAFS's vlserver (Debian's openafs-dbserver)
 * started with authentication required, its key installed with OpenAFS's own
 * asetkey from a known DES key, called by the Node client with a ticket
 * minted from that key for a user in its UserList.
 *
 * The same cell and address as openafs.test.ts (test/vl.ts), with a database
 * and configuration of its own; asetkey writes into /etc/openafs/server,
 * which the test bind-mounts from that configuration while it runs.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Client } from '../../lib/client';
import { RxAbortError } from '../../lib/errors';
import { SecurityLevel } from '../../lib/security';
import { XdrReader } from '../../lib/xdr';
import { mintToken, randomDesKey } from '../rxkad/ticket';
import { getNewVolumeIdRequest, setUpCell, startVlserver, VL_ADDRESS, Vlserver } from '../vl';
import { keysGone, serials } from './keys';

const KVNO = 3;
const VL_PERM = 363546;
const dir = '/tmp/openafs-rxkad';
const dest = { address: VL_ADDRESS, port: 7003, service: 52 };
const cellKey = randomDesKey();
let mounted = false;
let vlserver: Vlserver | undefined;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** A token for `name`, sealed with the cell's key, for the kvno asetkey installed it under. */
const tokenFor = (name: string) => mintToken({ serverKey: cellKey, kvno: KVNO, name, realm: '' });

beforeAll(async () => {
  setUpCell(dir);
  const server = `${dir}/server`;
  writeFileSync(`${server}/UserList`, 'admin\n');
  sh('mount', ['--bind', server, '/etc/openafs/server']);
  mounted = true;
  // OpenAFS's own tool writes the KeyFile: the cell's rxkad key, by kvno.
  sh('asetkey', ['add', String(KVNO), cellKey.toString('hex')]);
  expect(sh('asetkey', ['list'])).toContain(`kvno    ${KVNO}: key is: ${cellKey.toString('hex')}`);
  vlserver = await startVlserver(dir, [], { auth: true });
}, 150000);

afterAll(async () => {
  await vlserver?.stop();
  if (mounted) sh('umount', ['/etc/openafs/server']);
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
