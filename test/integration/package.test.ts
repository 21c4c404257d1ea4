// A real call through the package as a user installs it: the tarball that
// scripts/pack-test.js installed into out/pack-test/consumer (npm test passes
// its directory in RXRPC_PACK_DIR), loaded with require('rxrpc') from that
// project, with the addon its install script built.
import { release } from 'node:os';
import { join } from 'node:path';
import { nodeJson, packResult, run } from '../pack';
import { freshPort } from './helpers';

test('Client to Server on 127.0.0.1 through require() of the installed package', async () => {
  const pack = packResult(false);
  const script = `
    const { Client, Server } = require('rxrpc');
    const port = Number(process.argv[1]);
    (async () => {
      const server = new Server({ address: '127.0.0.1', port, services: [52] },
        async (call) => Buffer.concat([Buffer.from('re:'), await call.request()]));
      const client = new Client();
      const reply = await client.call({ address: '127.0.0.1', port, service: 52 }, Buffer.from('hello'), { timeout: 30000 });
      client.close();
      await server.close();
      const addon = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
        .filter((l) => l.endsWith('rxrpc.node')).map((l) => l.slice(l.indexOf('/')));
      console.log(JSON.stringify({
        main: require.resolve('rxrpc'), addon: [...new Set(addon)],
        service: reply.service, data: reply.data.toString(),
      }));
    })().catch((err) => { console.error(err); process.exit(1); });`;
  const r = await nodeJson(pack.consumer, ['-e', script, String(freshPort())]);
  expect(r).toEqual({
    main: join(pack.installed, 'dist', 'index.js'),
    addon: [join(pack.installed, 'build', 'Release', 'rxrpc.node')],
    service: 52,
    data: 're:hello',
  });
});

test('the installed rxrpc command: doctor finds AF_RXRPC usable on this kernel and exits 0', async () => {
  const pack = packResult(false);
  // The bin link npm made; the VM sees the project read-only, so no npx (it writes its cache and logs).
  const r = await run(pack.consumer, [join(pack.consumer, 'node_modules', '.bin', 'rxrpc'), 'doctor', '--json']);
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, command: 'doctor', kernel: { release: release() }, afRxrpc: { usable: true } });
});
