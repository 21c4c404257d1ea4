/**
 * rxrpc probe: the service-upgrade probe (Client.probe, probeVL, probeFS)
 * against a server: what answered, its capabilities, the round trip.
 */
import { performance } from 'node:perf_hooks';
import { abortCodeName, AFS, Client, decodeCapabilities, probeFS, probeVL, ProbeResult } from '../index';
import {
  CommandSpec, flag, integerOption, parseHex, Parsed, parseService, parseTarget, showAddress, stringOption, Target,
} from './args';
import { Command, Context, emit, say } from './command';
import { describeError, EXIT, exitCodeOf, UsageError } from './errors';
import { codeWithName, columns, elapsed, ms, spread, word } from './format';
import { Progress } from './io';

/** FS capability word 0 (AFS3_VICED_CAPABILITY_*, as the kernel's fs/afs/protocol_afs.h names them). */
export const FS_CAPABILITY_BITS: Array<[number, string, string]> = [
  [0x1, 'ERRORTRANS', 'uses UAE error codes'],
  [0x2, '64BITFILES', 'FetchData64 and StoreData64'],
  [0x4, 'WRITELOCKACL', 'can lock a file without the lock permission'],
  [0x8, 'SANEACLS', 'ACLs reviewed for sanity'],
];

/** Names of the bits set in an FS capability list's first word, and the bits it has beyond them. */
export function fsCapabilityNames(words: readonly number[]): string[] {
  if (words.length === 0) return [];
  const names = FS_CAPABILITY_BITS.filter(([bit]) => (words[0] & bit) !== 0).map(([, n]) => n);
  const rest = words[0] & ~FS_CAPABILITY_BITS.reduce((a, [bit]) => a | bit, 0);
  if (rest) names.push(`unknown bits ${word(rest)}`);
  return names;
}

type Kind = 'VL' | 'FS' | 'custom';

interface Plan {
  kind: Kind;
  service: number;
  upgradeTo?: number;
  request?: Buffer;
}

export interface ProbeRecord {
  n: number;
  ok: boolean;
  rttMs: number;
  service?: number;
  upgraded?: boolean;
  summary?: string;
  fallback?: ProbeResult['fallback'];
  abortCode?: number;
  abortName?: string;
  reply?: Buffer;
  capabilities?: number[];
  capabilityNames?: string[];
  error?: Record<string, unknown>;
}

const spec: CommandSpec = {
  name: 'probe',
  summary: 'the service-upgrade probe: which service answers, capabilities, round trip',
  usage: [
    'probe HOST[:PORT] --vl [--count N] [--timeout MS] [--json]',
    'probe HOST[:PORT] --fs [--count N] [--timeout MS] [--json]',
    'probe HOST:PORT --service N --request HEX [--upgrade-to M] [--count N] [--json]',
  ],
  description: [
    'Sends a request with the upgrade flag on a new connection and reports which service answered. --vl probes a VL ' +
    'server with VL_GetCapabilities (service 52, upgrade to YFS VL 2503, port 7003 by default); --fs a file server ' +
    'with GetCapabilities (service 1, upgrade to 2500, port 7000). A server that aborts the probe with RXGEN_OPCODE ' +
    '(OpenAFS 1.8) has no upgrade; a probe broken by RX_PROTOCOL_ERROR hit the server kernel\'s upgrade defect. ' +
    'Either way later calls use the original service.',
    'Exit status: 0 when every probe was answered (a reply, or an abort meaning "no upgrade"), 1 when any failed.',
  ],
  options: {
    vl: { type: 'boolean', help: 'probe a VL server (52 -> 2503, port 7003)' },
    fs: { type: 'boolean', help: 'probe a file server (1 -> 2500, port 7000)' },
    service: { type: 'string', value: 'N', help: 'probe service N with --request' },
    request: { type: 'string', value: 'HEX', help: 'the probe request, in hex (with --service)' },
    'upgrade-to': { type: 'string', value: 'M', help: 'the only service besides N that may answer (with --service)' },
    count: { type: 'string', value: 'N', help: 'probes to send, one after another (default 1)' },
    interval: { type: 'string', value: 'MS', help: 'pause between probes (default 0)' },
    timeout: { type: 'string', value: 'MS', help: 'time allowed for each probe (default 10000)' },
    verbose: { type: 'boolean', short: 'v', help: 'a line for each probe of a series' },
  },
  positionals: { min: 1, max: 1, names: 'HOST[:PORT]' },
  examples: [
    'rxrpc probe 127.0.0.1 --vl',
    'rxrpc probe [::1]:7000 --fs --json',
    'rxrpc probe 127.0.0.1:17003 --service 52 --request 00010001 --upgrade-to 2503 --count 50',
  ],
};

function plan(parsed: Parsed): Plan {
  const chosen = ['vl', 'fs', 'service'].filter((k) => parsed.values[k] !== undefined);
  if (chosen.length !== 1) {
    throw new UsageError(chosen.length ? `--${chosen.join(' and --')} cannot be used together` : 'say what to probe: --vl, --fs or --service N --request HEX');
  }
  if (flag(parsed, 'vl') || flag(parsed, 'fs')) {
    for (const o of ['request', 'upgrade-to']) if (parsed.values[o] !== undefined) throw new UsageError(`--${o} goes with --service, not --${chosen[0]}`);
    return flag(parsed, 'vl')
      ? { kind: 'VL', service: AFS.VL.service, upgradeTo: AFS.VL.upgradeTo }
      : { kind: 'FS', service: AFS.FS.service, upgradeTo: AFS.FS.upgradeTo };
  }
  const service = parseService('--service', stringOption(parsed, 'service')!);
  const hex = stringOption(parsed, 'request');
  if (hex === undefined) throw new UsageError('--service needs --request HEX: the request both services accept (e.g. a GetCapabilities opcode)');
  const upgrade = stringOption(parsed, 'upgrade-to');
  const upgradeTo = upgrade === undefined ? undefined : parseService('--upgrade-to', upgrade);
  if (upgradeTo === service) throw new UsageError(`--upgrade-to must differ from --service (both ${service})`);
  return { kind: 'custom', service, upgradeTo, request: parseHex('--request', hex) };
}

async function once(client: Client, p: Plan, target: Target, timeout: number, n: number): Promise<ProbeRecord> {
  const started = performance.now();
  const dest = { address: target.address, port: target.port };
  try {
    let result: ProbeResult & { capabilities?: number[] };
    if (p.kind === 'VL') result = await probeVL(client, dest, { timeout });
    else if (p.kind === 'FS') result = await probeFS(client, dest, { timeout });
    else result = await client.probe(dest, { service: p.service, upgradeTo: p.upgradeTo, request: p.request!, timeout });
    const rttMs = elapsed(started);
    const rec: ProbeRecord = { n, ok: true, rttMs, service: result.service, upgraded: result.upgraded, summary: result.summary };
    if (result.fallback) rec.fallback = result.fallback;
    if (result.abortCode !== undefined) {
      rec.abortCode = result.abortCode;
      const name = abortCodeName(result.abortCode);
      if (name) rec.abortName = name;
    }
    if (result.reply) rec.reply = result.reply;
    if (p.kind === 'custom' && result.reply && result.reply.length > 0) {
      // A reply that reads as a capability list is shown as one.
      try {
        rec.capabilities = decodeCapabilities(result.reply);
      } catch {
        // not a capability list
      }
    } else if (result.capabilities) {
      rec.capabilities = result.capabilities;
    }
    if (p.kind === 'FS' && rec.capabilities) rec.capabilityNames = fsCapabilityNames(rec.capabilities);
    return rec;
  } catch (err) {
    // No AF_RXRPC, or a value the library refuses: not this probe's failure, the command's.
    if (exitCodeOf(err) !== EXIT.FAILED) throw err;
    return { n, ok: false, rttMs: elapsed(started), error: describeError(err) };
  }
}

function outcome(r: ProbeRecord): string {
  if (!r.ok) return 'failed';
  if (r.upgraded) return 'upgraded';
  if (r.fallback === 'not-supported') return 'not supported';
  if (r.fallback === 'protocol-error') return 'protocol error';
  return 'original';
}

export interface SeriesSummary {
  probes: number;
  upgraded: number;
  original: number;
  notSupported: number;
  protocolError: number;
  failed: number;
  answeredBy: Record<string, number>;
  rttMs?: { min: number; median: number; max: number };
}

export function summariseSeries(records: readonly ProbeRecord[]): SeriesSummary {
  const by = (o: string) => records.filter((r) => outcome(r) === o).length;
  const answeredBy: Record<string, number> = {};
  for (const r of records) if (r.service !== undefined) answeredBy[r.service] = (answeredBy[r.service] ?? 0) + 1;
  const rtt = spread(records.filter((r) => r.ok).map((r) => r.rttMs));
  return {
    probes: records.length, upgraded: by('upgraded'), original: by('original'), notSupported: by('not supported'),
    protocolError: by('protocol error'), failed: by('failed'), answeredBy, ...(rtt ? { rttMs: rtt } : {}),
  };
}

function describePlan(p: Plan, target: Target): string {
  const where = showAddress(target.address, target.port);
  const host = target.host !== target.address ? ` (${target.host})` : '';
  const what = p.kind === 'custom' ? 'probe' : `${p.kind} probe`;
  return `${what} of ${where}${host}: service ${p.service}${p.upgradeTo ? `, upgrade to ${p.upgradeTo}` : ''}`;
}

export function formatOne(p: Plan, target: Target, r: ProbeRecord): string {
  const rows: string[][] = [];
  if (!r.ok) {
    rows.push(['result', `failed: ${String(r.error?.message)}`]);
  } else {
    rows.push(['result', r.summary ?? '']);
    rows.push(['answered by', `service ${r.service}`]);
    if (r.abortCode !== undefined) rows.push(['abort', codeWithName(r.abortCode, r.abortName)]);
    if (r.capabilities) {
      rows.push(['capabilities', r.capabilities.length ? r.capabilities.map(word).join(' ') : 'none']);
      if (r.capabilityNames?.length) rows.push(['', r.capabilityNames.join(', ')]);
    } else if (r.reply && r.reply.length > 0) {
      rows.push(['reply', `${r.reply.length} bytes: ${r.reply.subarray(0, 32).toString('hex')}${r.reply.length > 32 ? '...' : ''}`]);
    }
    if (r.fallback === 'protocol-error') rows.push(['note', 'the server\'s kernel broke the upgrade (see `rxrpc doctor` there)']);
  }
  rows.push(['round trip', ms(r.rttMs)]);
  return `${describePlan(p, target)}\n${columns(rows, '  ')}`;
}

export function formatSeries(p: Plan, target: Target, records: readonly ProbeRecord[], s: SeriesSummary): string {
  const rows: string[][] = [
    ['upgraded', String(s.upgraded)],
    ['original', String(s.original)],
    ['not supported', String(s.notSupported)],
    ['protocol error', `${s.protocolError}${s.protocolError ? ' (the server kernel\'s upgrade defect)' : ''}`],
    ['failed', String(s.failed)],
    ['answered by', Object.entries(s.answeredBy).map(([svc, n]) => `service ${svc} ${n}`).join(', ') || 'none'],
  ];
  if (s.rttMs) rows.push(['round trip', `min ${ms(s.rttMs.min)}, median ${ms(s.rttMs.median)}, max ${ms(s.rttMs.max)}`]);
  const failures = [...new Set(records.filter((r) => !r.ok).map((r) => String(r.error?.message)))];
  for (const f of failures.slice(0, 3)) rows.push(['failure', f]);
  return `${describePlan(p, target)}: ${s.probes} probes\n${columns(rows, '  ')}`;
}

async function run(parsed: Parsed, ctx: Context): Promise<number> {
  const p = plan(parsed);
  const count = integerOption(parsed, 'count', 1, 100000, 1);
  const interval = integerOption(parsed, 'interval', 0, 3600000, 0);
  const timeout = integerOption(parsed, 'timeout', 1, 3600000, 10000);
  const defaultPort = p.kind === 'VL' ? AFS.VL.port : p.kind === 'FS' ? AFS.FS.port : undefined;
  const target = await parseTarget(parsed.positionals[0], defaultPort);
  const verbose = flag(parsed, 'verbose');
  const progress = new Progress(ctx.io.stderr, !ctx.json && count > 1);
  const client = new Client();
  const records: ProbeRecord[] = [];
  let stopped = false;
  const unlisten = ctx.io.onStop(() => (stopped = true));
  try {
    for (let n = 1; n <= count && !stopped; n++) {
      if (count > 1) {
        const s = summariseSeries(records);
        progress.update(`probe ${n} of ${count}: ${s.upgraded} upgraded, ${s.original} original, ` +
          `${s.notSupported + s.protocolError} fallback, ${s.failed} failed`);
      }
      const r = await once(client, p, target, timeout, n);
      records.push(r);
      if (verbose && count > 1 && !ctx.json) {
        progress.done();
        say(ctx, `  ${String(n).padStart(String(count).length)}  ${outcome(r).padEnd(14)} ${r.service !== undefined ? `service ${r.service}` : String(r.error?.code ?? '')}  ${ms(r.rttMs)}`);
      }
      if (interval && n < count) await new Promise((resolve) => setTimeout(resolve, interval));
    }
  } finally {
    progress.done();
    unlisten();
    client.close();
  }
  const summary = summariseSeries(records);
  const ok = summary.failed === 0 && !stopped;
  emit(ctx, ok, {
    target, kind: p.kind, service: p.service, ...(p.upgradeTo ? { upgradeTo: p.upgradeTo } : {}),
    ...(p.request ? { request: p.request } : {}), count, ...(stopped ? { interrupted: true } : {}),
    probes: records, summary,
  });
  if (!ctx.json) say(ctx, records.length === 1 ? formatOne(p, target, records[0]) : formatSeries(p, target, records, summary));
  if (stopped) return EXIT.INTERRUPTED;
  return ok ? EXIT.OK : EXIT.FAILED;
}

export const probe: Command = { spec, run };
