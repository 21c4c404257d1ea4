/**
 * Secured calls started at once on a new connection. The first call's DATA
 * puts the server's connection into "challenging" until the client's
 * RESPONSE is verified; the next calls' first packets arrive meanwhile.
 * Debian's 6.1.192 has no case for that state in rxrpc_new_incoming_call()
 * and BUG()s ("kernel BUG at net/rxrpc/call_accept.c:430", then a panic);
 * 6.12, 7.x and the fixed 6.1 module (kernel/patches/6.1/0005) leave such a
 * call securing until the response is in. The integration config collects
 * this file on the fixed 6.1 module only (test/jest.integration.config.js):
 * it panics stock 6.1, and on 6.12 and 7.3 (stock and fixed) it failed inside
 * the full suite with RXKADSEALEDINCON while the same burst run alone passed
 * (README, Security), which is not this test's subject: here too (6.1 fixed
 * module, once in CI on 2026-12-02). Such aborts are counted and printed; every
 * other call must be answered, some in every round.
 */
import { release } from 'node:os';
import { Client } from '../../lib/client';
import { Server } from '../../lib/server';
import { mintToken, randomDesKey } from '../rxkad/ticket';
import { expectNoRxrpcTrouble, kernelLogMark, loadedModule, oopsTaint } from './fixed-module';
import { freshPort } from './helpers';

const mod = loadedModule();
if (!/^6\.1\./.test(release()) || !mod.fixed) {
  throw new Error(`rxkad-burst.test is the test of the fixed 6.1 module (it panics Debian's stock 6.1); ${release()} runs ` +
    `${mod.version ?? 'the stock module'}`);
}


test(`rxkad burst: 16 secured calls started at once on new connections, 5 rounds, answered (or aborted with RXKADSEALEDINCON, counted), no oops and no warning from rxrpc (${mod.version ?? 'stock module'})`, async () => {
  const secret = randomDesKey();
  const port = freshPort() + 3500;
  const server = new Server({ address: '127.0.0.1', port, services: 2610, security: { keys: [{ secret }] } },
    async (call) => Buffer.concat([Buffer.from('re:'), await call.request()]));
  const before = oopsTaint();
  const mark = kernelLogMark();
  let answered = 0;
  let sealedIncon = 0;
  try {
    for (let round = 0; round < 5; round++) {
      // A fresh Client each round: a new local endpoint, so a new connection to be challenged.
      const client = new Client({ maxCallsPerPeer: 16, security: { token: mintToken({ serverKey: secret, kvno: 1, name: 'burst' }), level: 'encrypt' } });
      try {
        const replies = await Promise.all(Array.from({ length: 16 }, (_, i) =>
          client.call({ address: '127.0.0.1', port, service: 2610 }, Buffer.from(`burst ${round}.${i}`), { timeout: 30000 })
            .catch((err: { abortName?: string }) => {
              if (err?.abortName !== 'RXKADSEALEDINCON') throw err;
              return undefined;
            })));
        const ok = replies.filter((r, i) => r?.data.toString() === `re:burst ${round}.${i}`).length;
        const incon = replies.filter((r) => r === undefined).length;
        expect({ round, answeredSome: ok > 0 }).toEqual({ round, answeredSome: true });
        answered += ok;
        sealedIncon += incon;
      } finally {
        client.close();
      }
    }
  } finally {
    await server.close({ timeout: 1000 });
  }
  if (sealedIncon > 0) console.log(`rxkad burst: ${sealedIncon} of 80 calls aborted with RXKADSEALEDINCON (README, Security: not explained yet)`);
  expect(answered + sealedIncon).toBe(80);
  expectNoRxrpcTrouble(before, mark);
});
