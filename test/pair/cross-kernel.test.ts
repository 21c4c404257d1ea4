/**
 * Calls between two different kernels, one VM each (scripts/vm/pair.sh):
 * this guest (A) as the client of the other's server (B, through the agent),
 * then the other way round.
 */
import { AgentLink } from '../../scripts/pair/control';
import {
  GuestInfo, Outcome, probeUpgrade, ProbeTally, runWorkload, serve, Target, workloadClient, WorkloadOptions,
} from '../../scripts/pair/workload';
import { kernelSeries } from '../../lib/kernel';
import { Server } from '../../lib/server';
import { shortRequestTimeout } from '../integration/helpers';
import { connectPeer, PEER, PEER_SUITE, report, SELF, SELF_SUITE } from './helpers';

const PORT = 18710;
const UPGRADE_PORT = 18711;
const SERVICE = 4100;
const UPGRADE: [number, number] = [4102, 4103];
const PROBES = 10;
const MiB = 1024 * 1024;

const small = (target: Target): WorkloadOptions => ({ target, calls: 200, concurrency: 16, requestBytes: 512, replyBytes: 512, timeout: 30000 });
const bulk = (target: Target): WorkloadOptions => ({
  target, calls: 1, concurrency: 1, requestBytes: 16 * MiB, replyBytes: 16 * MiB, exact: true, timeout: 300000,
});
const streaming = (target: Target): WorkloadOptions => ({
  target, calls: 2, concurrency: 2, requestBytes: 2 * MiB, replyBytes: 0, exact: true, timeout: 120000, streamChunk: 32 * 1024,
});

/**
 * The aborts a server's kernel makes of a request whose next DATA packet is
 * late: RX_CALL_TIMEOUT, or RX_CALL_DEAD when the connection carried other
 * packets meanwhile (the call looks reset). Stock 6.12 and 7.x abort after
 * 250 ms (README, Kernel support: the call timeouts set in jiffies and read as
 * milliseconds), which two emulated VMs on two cores reach now and then, so
 * that every call of a workload may meet it. 6.1 and the fixed module wait
 * 1 s, and 6.1 also counts the time its user space leaves a request unread
 * (calls.test.ts), which these guests reach rarely (one streaming call of two,
 * 7.3 client to 6.1 server, in one of two full runs on 2026-12-02): there, such
 * aborts are counted the same way, but at least one call must complete.
 */
const GAP_ABORTS = ['RX_CALL_TIMEOUT', 'RX_CALL_DEAD'];
function requestGapAborts(server: GuestInfo): { limit: string; someMustComplete: boolean } {
  const short = shortRequestTimeout(server.kernel, server.moduleVersion);
  return { limit: short ? '250 ms' : '1 s', someMustComplete: !short };
}

/**
 * Every call completed with its bytes intact; for requests of many packets,
 * `server` names the kernel whose request-gap aborts are counted as such
 * (and reported) rather than as failures. Returns the calls that completed.
 */
function expectAllOk(o: Outcome, what: string, server?: GuestInfo): number {
  const gap = server ? requestGapAborts(server) : undefined;
  const failed = { ...o.failed };
  let aborted = 0;
  for (const code of gap ? GAP_ABORTS : []) {
    aborted += failed[code] ?? 0;
    delete failed[code];
  }
  if (aborted > 0) {
    report(`cross-kernel: ${what}: ${aborted} of ${o.calls} calls ended with ${JSON.stringify(o.failed)}: ` +
      `${server?.kernel} aborts a request whose next packet is more than ${gap?.limit} late`);
    if (gap?.someMustComplete) expect(o.ok).toBeGreaterThan(0);
  }
  expect({ ok: o.ok + aborted, failed, bad: o.bad, pending: o.pending, problems: o.problems })
    .toEqual({ ok: o.calls, failed: {}, bad: 0, pending: 0, problems: [] });
  return o.ok;
}

/**
 * What a probe of an upgrading server gets, by the server's kernel (measured,
 * see README "Two kernels"): stock kernels break the server side of the
 * upgrade, so a probe falls back to the original service (the client's job);
 * 7.x upgraded a few probes in earlier runs; the fixed module upgrades every one.
 */
function expectProbe(t: ProbeTally, server: GuestInfo): void {
  expect({ accounted: t.upgraded + t.original + t.protocolError, other: t.other, problems: t.problems })
    .toEqual({ accounted: t.probes, other: {}, problems: [] });
  // Whatever answered, the call after the probe went to the service the probe learned.
  expect(t.followUpOk).toBe(t.probes);
  if (server.module === 'fixed') {
    expect(t.upgraded).toBe(t.probes);
  } else if ((kernelSeries(server.kernel) ?? 0) < 7000) {
    expect(t.upgraded).toBe(0);
  }
}

function describeProbe(t: ProbeTally, client: GuestInfo, server: GuestInfo): string {
  return `cross-kernel: upgrade probe, client ${client.kernel} (${client.module}) -> server ${server.kernel} (${server.module}): ` +
    `${t.probes} probes: ${t.upgraded} upgraded, ${t.original} original service, ${t.protocolError} RX_PROTOCOL_ERROR (fell back)`;
}

let agent: AgentLink;
let self: GuestInfo;
let peer: GuestInfo;
const local: Server[] = [];

beforeAll(async () => {
  ({ agent, self, peer } = await connectPeer());
  report(`cross-kernel: this guest ${SELF} ${self.kernel} (Debian ${self.version}, ${self.module} rxrpc), ` +
    `the other ${PEER} ${peer.kernel} (Debian ${peer.version}, ${peer.module} rxrpc)`);
  await agent.call('serve', { port: PORT, services: [SERVICE] });
  await agent.call('serve', { port: UPGRADE_PORT, services: UPGRADE, upgrade: true });
  local.push(serve({ address: SELF, port: PORT, services: [SERVICE] }).server);
  local.push(serve({ address: SELF, port: UPGRADE_PORT, services: UPGRADE, upgrade: true }).server);
}, 240000);

afterAll(async () => {
  for (const s of local) await s.close({ timeout: 2000 });
  if (agent) {
    await agent.call('close', { port: PORT }).catch(() => {});
    await agent.call('close', { port: UPGRADE_PORT }).catch(() => {});
    agent.close();
  }
});

/**
 * The same tests both ways: `run` runs a workload on the client's side,
 * `probe` the upgrade probes; `client`/`server` say which guest is which.
 */
function direction(target: Target, run: (o: WorkloadOptions) => Promise<Outcome>, probe: () => Promise<ProbeTally>,
  roles: () => { client: GuestInfo; server: GuestInfo }): void {
  test('200 small calls, 16 in flight, all answered with their bytes intact', async () => {
    const o = await run(small(target));
    expect(o.kernel).toBe(roles().client.kernel);
    expectAllOk(o, 'small calls');
  });

  test('16 MiB each way in one call, digests checked', async () => {
    const o = await run(bulk(target));
    const ok = expectAllOk(o, '16 MiB each way', roles().server);
    expect(o.bytes).toBe(ok * 32 * MiB);
  });

  test('streaming: 2 MiB in 32 KiB writes, the reply read as it streams back', async () => {
    const o = await run(streaming(target));
    const ok = expectAllOk(o, 'streaming', roles().server);
    expect(o.bytes).toBe(ok * 4 * MiB);
  });

  test('upgrade probe of an upgrading server: what answered is what this kernel pair is known to do', async () => {
    const t = await probe();
    const { client, server } = roles();
    report(describeProbe(t, client, server));
    expect(t.kernel).toBe(client.kernel);
    expectProbe(t, server);
  });
}

describe(`cross-kernel: client on ${SELF_SUITE} (this VM), server on ${PEER_SUITE}`, () => {
  direction({ address: PEER, port: PORT, service: SERVICE }, async (o) => {
    const client = workloadClient(o.concurrency);
    try {
      return await runWorkload(client, o);
    } finally {
      client.close();
    }
  }, () => probeUpgrade(PEER, UPGRADE_PORT, UPGRADE, PROBES), () => ({ client: self, server: peer }));
});

describe(`cross-kernel: client on ${PEER_SUITE}, server on ${SELF_SUITE} (this VM)`, () => {
  direction({ address: SELF, port: PORT, service: SERVICE }, (o) => agent.call<Outcome>('run', o),
    () => agent.call<ProbeTally>('probe', { address: SELF, port: UPGRADE_PORT, services: UPGRADE, probes: PROBES }),
    () => ({ client: peer, server: self }));
});
