import { runConformance } from '../../scripts/conformance-run';

test('the conformance run classifies every probe; a server without upgrade always answers on the original ID', async () => {
  const report = await runConformance(5, 17950);
  const u = report.upgradeServer;
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  expect(u.upgraded + u.original + sum(u.aborted) + sum(u.failed)).toBe(5);
  // Every probe settled promptly: none ran into its timeout. (7.3 fails a few
  // with ECONNABORTED from the kernel; those count as failed, not timed out.)
  expect(Object.keys(u.failed).filter((k) => /timeout|ETIMEDOUT/i.test(k))).toEqual([]);
  expect(report.plainServer).toMatchObject({ probes: 5, original: 5, upgraded: 0, aborted: {}, failed: {} });
  expect(report.kernel).toBe(process.env.RXRPC_VM_KERNEL);
}, 300000);
