import { release } from 'node:os';
import { Client } from '../../lib/client';
import { Server } from '../../lib/server';
import { expectNoRxrpcTrouble, kernelLogMark, loadedModule, oopsTaint } from './fixed-module';
import { freshPort } from './helpers';

// Local endpoints opened and closed one after another: 1,000 Clients with the
// default isolateServices, each with a local endpoint of its own (a private
// port), one call each, closed as soon as the reply is in. A connection's
// timer then fires after its local endpoint's I/O thread has exited (the
// final ACK is due two jiffies after the call ends). Debian's 6.12.95 hands
// the thread's NULL pointer to wake_up_process() there and panics in
// try_to_wake_up (rxrpc_connection_timer -> rxrpc_wake_up_io_thread); 7.x
// and the fixed module (kernel/backports/6.12) check for it. Because it
// panics the stock 6.12 kernel, the integration config collects this file
// only when the VM runner loaded the fixed module (RXRPC_VM_MODULE=fixed).
const mod = loadedModule();
if (!mod.fixed) {
  throw new Error(`churn.test runs on the fixed rxrpc module only (it panics Debian's stock 6.12.95); ${release()} runs the stock ` +
    'module (/sys/module/rxrpc/version names no upgrade-fix)');
}


test(`churn: 1,000 Clients (a local endpoint each) opened, used once and closed on the fixed rxrpc module (${mod.version}): ` +
  'every call answered, no oops and no warning from rxrpc, the kernel still serves calls', async () => {
  const port = freshPort();
  const server = new Server({ address: '127.0.0.1', port, services: 4500 }, async (call) => call.request());
  const dest = { address: '127.0.0.1', port, service: 4500 };
  const before = oopsTaint();
  const mark = kernelLogMark();
  const started = Date.now();
  let answered = 0;
  try {
    for (let i = 0; i < 1000; i++) {
      const client = new Client();
      try {
        const r = await client.call(dest, Buffer.from(`churn ${i}`), { timeout: 20000 });
        if (r.data.toString() === `churn ${i}`) answered++;
      } finally {
        client.close();
      }
    }
    console.log(`churn: 1000 Clients in ${Date.now() - started} ms`);
    // The last endpoints' connection timers fire after their close; give them their jiffies, then a call more.
    await new Promise((r) => setTimeout(r, 500));
    const last = new Client();
    try {
      expect((await last.call(dest, Buffer.from('after'), { timeout: 20000 })).data.toString()).toBe('after');
    } finally {
      last.close();
    }
  } finally {
    await server.close({ timeout: 1000 });
  }
  expect(answered).toBe(1000);
  expectNoRxrpcTrouble(before, mark);
}, 600000);
