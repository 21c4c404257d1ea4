/**
 * rxrpc stats: the local kernel's view (/proc/net/rxrpc) parsed and
 * summarised, or a peer's RXSTATS service (409). rxdebug's Rx DEBUG packets
 * cannot be sent through AF_RXRPC, so this is what can be had remotely.
 */
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '../index';
import { CommandSpec, flag, integerOption, Parsed, parseTarget, showAddress, stringOption, Target } from './args';
import { Command, Context, emit, say } from './command';
import { describeError, EnvironmentError, EXIT, UsageError } from './errors';
import { codeWithName, columns, counts, elapsed, ms } from './format';
import { cellText, PROC_RXRPC, ProcSnapshot, readProcDir, summarise, Summary } from './procfs';
import {
  decodeRetrieve, decodeWord, queryRequest, retrieveRequest, RetrievedStats, RXSTATS_OPCODES, RXSTATS_SERVICE, seconds,
} from './rxstats';

export const RXDEBUG_NOTE = 'Rx DEBUG packets (what rxdebug sends) cannot be sent through AF_RXRPC: they are not calls, and the ' +
  'kernel neither sends them for a socket nor hands them to one (it answers rxdebug -version itself). RXSTATS (service 409), ' +
  'an ordinary Rx service, is what AF_RXRPC can ask a peer for.';

const spec: CommandSpec = {
  name: 'stats',
  summary: 'the kernel\'s rxrpc calls, connections and peers; or a peer\'s RXSTATS service',
  usage: [
    'stats [--list] [--from DIR] [--json]',
    'stats HOST:PORT --rxstats [--timeout MS] [--json]',
  ],
  description: [
    'Without HOST: reads /proc/net/rxrpc (calls, conns, peers, locals, and bundles and stats where the kernel has them) ' +
    'and summarises it: calls by end, state, service and abort code; connections; each peer\'s round-trip time; the ' +
    'local endpoints. Formats differ between kernels; lines that do not fit their header are counted, not dropped. ' +
    '--from reads a saved copy of that directory instead.',
    `With HOST:PORT --rxstats: calls the peer's RXSTATS service (409, on the server's own port): whether process and ` +
    'peer statistics are on and, where they are, the count and times of each procedure, by interface (rxgen\'s ' +
    'statindex) and function index: the procedure\'s position in the server\'s own interface definition, which an ' +
    'interface file of only some of its procedures does not tell.',
    RXDEBUG_NOTE,
  ],
  options: {
    list: { type: 'boolean', help: 'every parsed line, not only the summary' },
    from: { type: 'string', value: 'DIR', help: `read this directory instead of ${PROC_RXRPC}` },
    rxstats: { type: 'boolean', help: 'call the RXSTATS service of HOST:PORT' },
    timeout: { type: 'string', value: 'MS', help: 'time allowed for each RXSTATS call (default 10000)' },
  },
  positionals: { min: 0, max: 1, names: 'HOST:PORT' },
  examples: ['rxrpc stats', 'rxrpc stats --list --json', 'rxrpc stats 198.18.0.1:7003 --rxstats'],
};

export function formatSummary(s: ProcSnapshot, sum: Summary, list: boolean): string {
  const out: string[] = [`rxrpc stats: ${s.dir}${s.dir === PROC_RXRPC ? ` (Linux ${release()})` : ''}: ${s.files.join(', ')}`];
  const rows: string[][] = [];
  if (sum.calls) {
    const c = sum.calls;
    rows.push(['calls', `${c.active} active (${c.client} client, ${c.server} server), ${c.preallocated} preallocated server calls`]);
    rows.push(['  by state', counts(c.byState)]);
    rows.push(['  by service', counts(c.byService)]);
    rows.push(['  aborted', c.aborted.length ? c.aborted.map((a) => `${codeWithName(a.code, a.name)} ${a.count}`).join(', ') : 'none']);
  }
  if (sum.conns) {
    const c = sum.conns;
    rows.push(['connections', `${c.active} (${c.client} client, ${c.server} server), ${c.preallocated} preallocated`]);
    rows.push(['  by state', counts(c.byState)]);
  }
  if (sum.bundles !== undefined) rows.push(['bundles', String(sum.bundles)]);
  if (sum.locals) rows.push(['local endpoints', `${sum.locals.length}${sum.locals.length ? `: ${sum.locals.map((l) => l.local).join(', ')}` : ''}`]);
  if (sum.peers) rows.push(['peers', String(sum.peers.length)]);
  out.push(columns(rows, '  ').trimEnd());
  if (sum.peers?.length) {
    out.push(columns([['  local', 'remote', 'rtt', 'rto', 'mtu', 'idle'], ...sum.peers.map((p) => [
      `  ${p.local}`, p.remote, p.rttUs !== undefined ? ms(p.rttUs / 1000) : '-', p.rtoUs !== undefined ? ms(p.rtoUs / 1000) : '-',
      p.mtu !== undefined ? String(p.mtu) : '-', p.lastUseSeconds !== undefined ? `${p.lastUseSeconds} s` : '-',
    ])], '  ').trimEnd());
  }
  if (s.stats) {
    const g = s.stats.groups;
    const pick = (group: string, key: string) => (typeof g[group]?.[key] === 'number' ? g[group][key] : undefined);
    const facts = [
      ['DATA sent', pick('Data-Tx', 'nr')], ['retransmitted', pick('Data-Tx', 'retrans')], ['DATA received', pick('Data-Rx', 'nr')],
      ['ACKs sent', pick('Ack', 'send')],
    ].filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
    if (facts.length) out.push(`  kernel counters (stats): ${facts.join(', ')}`);
  }
  if (sum.unparsedLines) out.push(`  ${sum.unparsedLines} line(s) did not fit their header (see --list --json)`);
  if (list) {
    for (const [name, t] of Object.entries(s.tables)) {
      if (!t) continue;
      out.push('', `${name}:`);
      if (t.rows.length) out.push(columns([t.columns, ...t.rows.map((r) => t.columns.map((c) => cellText(name, c, r[c])))], '  ').trimEnd());
      for (const u of t.unparsed) out.push(`  (unparsed) ${u}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function local(parsed: Parsed, ctx: Context): number {
  const dir = stringOption(parsed, 'from') ?? join(ctx.io.root, PROC_RXRPC);
  if (!existsSync(dir)) {
    if (stringOption(parsed, 'from') !== undefined) throw new UsageError(`--from ${dir}: no such directory`);
    throw new EnvironmentError(`${PROC_RXRPC} does not exist: the rxrpc module is not loaded in this kernel (Linux ${release()})`,
      'ERR_RXRPC_NO_PROC', '`rxrpc doctor` says why and what to do');
  }
  const snapshot = readProcDir(dir);
  if (ctx.io.root !== '/' && stringOption(parsed, 'from') === undefined) snapshot.dir = PROC_RXRPC;
  const summary = summarise(snapshot);
  emit(ctx, true, { dir: snapshot.dir, files: snapshot.files, summary, ...(flag(parsed, 'list') ? { tables: snapshot.tables, stats: snapshot.stats } : {}), other: snapshot.other });
  say(ctx, formatSummary(snapshot, summary, flag(parsed, 'list')));
  return EXIT.OK;
}

interface RemoteStats {
  version?: number;
  processStats?: boolean;
  peerStats?: boolean;
  process?: RetrievedStats;
  peer?: RetrievedStats;
  errors: Record<string, Record<string, unknown>>;
}

async function remote(parsed: Parsed, ctx: Context, target: Target): Promise<number> {
  const timeout = integerOption(parsed, 'timeout', 1, 3600000, 10000);
  const client = new Client();
  const dest = { address: target.address, port: target.port, service: RXSTATS_SERVICE };
  const out: RemoteStats = { errors: {} };
  const started = performance.now();
  const ask = async <T>(name: string, body: Buffer, decode: (b: Buffer) => T): Promise<T | undefined> => {
    try {
      return decode((await client.call(dest, body, { timeout })).data);
    } catch (err) {
      out.errors[name] = describeError(err);
      return undefined;
    }
  };
  try {
    out.version = await ask('QueryRPCStatsVersion', queryRequest(RXSTATS_OPCODES.QueryRPCStatsVersion), (b) => decodeWord(b));
    const first = out.errors.QueryRPCStatsVersion;
    // A peer that does not answer the first call will not answer the rest.
    if (!first || first.code === 'ERR_RX_ABORT') {
      const on = async (name: 'QueryProcessRPCStats' | 'QueryPeerRPCStats') =>
        (await ask(name, queryRequest(RXSTATS_OPCODES[name]), (b) => decodeWord(b, true))) ?? undefined;
      const p = await on('QueryProcessRPCStats');
      if (p !== undefined) out.processStats = p !== 0;
      const q = await on('QueryPeerRPCStats');
      if (q !== undefined) out.peerStats = q !== 0;
      if (out.processStats) out.process = await ask('RetrieveProcessRPCStats', retrieveRequest(RXSTATS_OPCODES.RetrieveProcessRPCStats), (b) => decodeRetrieve(b, false));
      if (out.peerStats) out.peer = await ask('RetrievePeerRPCStats', retrieveRequest(RXSTATS_OPCODES.RetrievePeerRPCStats), (b) => decodeRetrieve(b, true));
    }
  } finally {
    client.close();
  }
  const timeMs = elapsed(started);
  const answered = out.version !== undefined || out.processStats !== undefined || out.peerStats !== undefined;
  emit(ctx, answered, { target, service: RXSTATS_SERVICE, timeMs, ...out, note: RXDEBUG_NOTE });
  if (!ctx.json) {
    const where = showAddress(target.address, target.port);
    const lines = [`RXSTATS (service ${RXSTATS_SERVICE}) of ${where}, in ${ms(timeMs)}`];
    const rows: string[][] = [];
    if (out.version !== undefined) rows.push(['statistics version', String(out.version)]);
    if (out.processStats !== undefined) rows.push(['process statistics', out.processStats ? 'on' : 'off']);
    if (out.peerStats !== undefined) rows.push(['peer statistics', out.peerStats ? 'on' : 'off']);
    for (const [call, e] of Object.entries(out.errors)) {
      const abort = typeof e.abortCode === 'number' ? codeWithName(e.abortCode, e.abortName as string | undefined) : undefined;
      rows.push([call, abort ? `aborted ${abort}` : String(e.message)]);
    }
    lines.push(columns(rows, '  ').trimEnd());
    for (const [label, r] of [['process', out.process], ['peer', out.peer]] as const) {
      if (!r) continue;
      lines.push(`  ${label} statistics: ${r.entries.length} procedure entr${r.entries.length === 1 ? 'y' : 'ies'} (server clock ${r.clock.sec}.${String(r.clock.usec).padStart(6, '0')})`);
      if (r.entries.length) {
        lines.push(columns([['    interface.function', 'calls', 'sent', 'received', 'exec mean', 'exec max', 'peer'], ...r.entries.map((e) => [
          `    ${e.interfaceId}.${e.funcIndex}`, e.invocations.toString(), e.bytesSent.toString(), e.bytesReceived.toString(),
          e.invocations > 0n ? ms(seconds(e.executionTime.sum) * 1000 / Number(e.invocations)) : '-', ms(seconds(e.executionTime.max) * 1000),
          e.peer ? showAddress(e.peer, e.port ?? 0) : 'all',
        ])]).trimEnd());
      }
    }
    if (!answered) lines.push(`  no answer from RXSTATS; ${where} may not offer it (OpenAFS servers do, on their own port)`);
    lines.push(`  note: ${RXDEBUG_NOTE}`);
    say(ctx, lines.join('\n'));
  }
  return answered ? EXIT.OK : EXIT.FAILED;
}

async function run(parsed: Parsed, ctx: Context): Promise<number> {
  const host = parsed.positionals[0];
  if (host === undefined) {
    for (const o of ['rxstats', 'timeout']) if (parsed.values[o] !== undefined) throw new UsageError(`--${o} goes with HOST:PORT`);
    return local(parsed, ctx);
  }
  if (!flag(parsed, 'rxstats')) {
    throw new UsageError('with HOST:PORT, say what to ask it: --rxstats (the only statistics AF_RXRPC can get from a peer)', RXDEBUG_NOTE);
  }
  for (const o of ['list', 'from']) if (parsed.values[o] !== undefined) throw new UsageError(`--${o} is for the local view, not --rxstats`);
  return remote(parsed, ctx, await parseTarget(host, undefined, 'HOST:PORT'));
}

export const stats: Command = { spec, run };
