/**
 * rxrpc serve: a server for quick experiments. Echoes, answers with canned
 * bytes, or aborts every call; logs each call; stops cleanly on SIGINT or
 * SIGTERM (calls in progress get a moment to finish).
 */
import { performance } from 'node:perf_hooks';
import { abortCodeName, RxAbortError, Server } from '../index';
import {
  CommandSpec, integerOption, listOption, parseAbortCode, parseHex, Parsed, parseService, parseUpgrade, showAddress, stringOption,
} from './args';
import { Command, Context, emitLine, say } from './command';
import { describeError, EXIT, UsageError } from './errors';
import { codeWithName } from './format';

type Action = { kind: 'echo' } | { kind: 'reply'; data: Buffer } | { kind: 'abort'; code: number };

const spec: CommandSpec = {
  name: 'serve',
  summary: 'a server for quick experiments: echo, a canned reply, or an abort',
  usage: [
    'serve --port P --service N [--address A] [--echo | --reply HEX | --abort CODE] [--json]',
    'serve --port P --service N --service M --upgrade N:M [...]',
  ],
  description: [
    'Binds one or two services on one UDP address (two share it; --upgrade lets the kernel upgrade calls from N to M, ' +
    'which Linux 6.1 to 7.3 do unreliably, see `rxrpc doctor`) and answers every call: --echo (the default) sends the ' +
    'request back, --reply HEX sends those bytes, --abort CODE aborts (a number, or a name such as RX_USER_ABORT, ' +
    'RXGEN_OPCODE, VL_NOENT). Each call is logged on stdout as it is answered (one JSON object per line with --json). ' +
    'SIGINT or SIGTERM stops it: calls in progress get 2 seconds, then it exits 0.',
  ],
  options: {
    address: { type: 'string', value: 'A', help: 'local address to serve on (default 127.0.0.1; 0.0.0.0 or :: for all)' },
    port: { type: 'string', value: 'P', help: 'UDP port (required; not 0: the kernel cannot say which one it chose)' },
    service: { type: 'string', multiple: true, value: 'N', help: 'a service ID to serve (one or two)' },
    upgrade: { type: 'string', value: 'N:M', help: 'let calls to N that ask for an upgrade be served by M' },
    echo: { type: 'boolean', help: 'reply with the request (the default)' },
    reply: { type: 'string', value: 'HEX', help: 'reply with these bytes' },
    abort: { type: 'string', value: 'CODE', help: 'abort every call with CODE (negative: --abort=-6)' },
    delay: { type: 'string', value: 'MS', help: 'wait this long before answering' },
    count: { type: 'string', value: 'N', help: 'stop after N calls' },
    backlog: { type: 'string', value: 'N', help: 'accept charges kept ready (default net.rxrpc.max_backlog)' },
  },
  positionals: { min: 0, max: 0, names: 'none' },
  examples: [
    'rxrpc serve --port 17003 --service 52',
    'rxrpc serve --port 17003 --service 52 --service 2503 --upgrade 52:2503 --reply 0000000100000001',
    'rxrpc serve --address :: --port 17000 --service 1 --abort RXGEN_OPCODE --json',
  ],
};

function action(parsed: Parsed): Action {
  const reply = stringOption(parsed, 'reply');
  const abort = stringOption(parsed, 'abort');
  const chosen = [parsed.values.echo === true, reply !== undefined, abort !== undefined].filter(Boolean).length;
  if (chosen > 1) throw new UsageError('choose one of --echo, --reply HEX and --abort CODE');
  if (reply !== undefined) return { kind: 'reply', data: parseHex('--reply', reply) };
  if (abort !== undefined) return { kind: 'abort', code: parseAbortCode('--abort', abort) };
  return { kind: 'echo' };
}

function preview(b: Buffer): string {
  return b.length === 0 ? '' : ` ${b.subarray(0, 16).toString('hex')}${b.length > 16 ? '...' : ''}`;
}

async function run(parsed: Parsed, ctx: Context): Promise<number> {
  const portText = stringOption(parsed, 'port');
  if (portText === undefined) throw new UsageError('--port P is required');
  const port = integerOption(parsed, 'port', 1, 65535)!;
  const services = listOption(parsed, 'service').map((s) => parseService('--service', s));
  if (services.length < 1 || services.length > 2) throw new UsageError(`give one or two --service IDs, not ${services.length}`);
  const upgradeText = stringOption(parsed, 'upgrade');
  const upgrade = upgradeText === undefined ? undefined : parseUpgrade(upgradeText);
  if (upgrade && (services.length !== 2 || !services.includes(upgrade.from) || !services.includes(upgrade.to))) {
    throw new UsageError(`--upgrade ${upgradeText} must name the two --service IDs (${services.join(', ')})`);
  }
  const what = action(parsed);
  const delay = integerOption(parsed, 'delay', 0, 3600000, 0);
  const limit = integerOption(parsed, 'count', 1, Number.MAX_SAFE_INTEGER);
  const backlog = integerOption(parsed, 'backlog', 1, 31);
  const address = stringOption(parsed, 'address') ?? '127.0.0.1';

  let served = 0;
  let stop!: (signal: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const started = performance.now();
  const stamp = () => new Date().toISOString().slice(11, 23);

  const server = new Server({ address, port, services: services as [number] | [number, number], ...(upgrade ? { upgrade } : {}), ...(backlog ? { backlog } : {}) },
    async (call) => {
      const n = ++served;
      const t0 = performance.now();
      const requestData = await call.request();
      if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
      const peer = showAddress(call.peer.address, call.peer.port);
      const log = (answer: string, extra: Record<string, unknown>) => {
        emitLine(ctx, {
          event: 'call', n, time: new Date().toISOString(), peer: call.peer, service: call.service, requestBytes: requestData.length,
          request: requestData, ...extra, handledMs: performance.now() - t0,
        });
        say(ctx, `${stamp()} call ${n} from ${peer} service ${call.service}: ${requestData.length} bytes${preview(requestData)} -> ${answer}`);
      };
      try {
        if (what.kind === 'abort') {
          log(`aborted ${codeWithName(what.code, abortCodeName(what.code))}`, { action: 'abort', abortCode: what.code });
          throw new RxAbortError(what.code);
        }
        const reply = what.kind === 'echo' ? requestData : what.data;
        log(`replied ${reply.length} bytes`, { action: what.kind, replyBytes: reply.length });
        return reply;
      } finally {
        if (limit !== undefined && n >= limit) setImmediate(() => stop('count'));
      }
    });
  server.on('warning', (w) => {
    emitLine(ctx, { event: 'warning', code: (w as { code?: string }).code, message: w.message });
    say(ctx, `${stamp()} warning: ${w.message}`);
  });
  server.on('handlerError', (err, call) => {
    emitLine(ctx, { event: 'error', peer: call.peer, error: describeError(err) });
    say(ctx, `${stamp()} call from ${showAddress(call.peer.address, call.peer.port)} failed: ${err.message}`);
  });
  server.on('error', (err) => {
    emitLine(ctx, { event: 'error', error: describeError(err) });
    say(ctx, `${stamp()} error: ${err.message}`);
  });

  const answer = what.kind === 'abort' ? `abort ${codeWithName(what.code, abortCodeName(what.code))}`
    : what.kind === 'reply' ? `reply ${what.data.length} bytes` : 'echo';
  emitLine(ctx, { event: 'listening', address, port, services, ...(upgrade ? { upgrade } : {}), action: what.kind,
    ...(what.kind === 'abort' ? { abortCode: what.code } : {}), ...(what.kind === 'reply' ? { reply: what.data } : {}) });
  say(ctx, `rxrpc serve: listening on ${showAddress(address, port)}, service${services.length > 1 ? 's' : ''} ${services.join(' and ')}` +
    `${upgrade ? ` (upgrade ${upgrade.from} -> ${upgrade.to})` : ''}; ${answer}; SIGINT or SIGTERM stops it`);

  const unlisten = ctx.io.onStop((signal) => stop(signal));
  const why = await stopped;
  unlisten();
  await server.close({ timeout: 2000 });
  const seconds = (performance.now() - started) / 1000;
  emitLine(ctx, { event: 'stopped', reason: why, calls: served, seconds });
  say(ctx, `rxrpc serve: stopped (${why === 'count' ? `after ${served} call${served === 1 ? '' : 's'}` : why}); ${served} call${served === 1 ? '' : 's'} in ${seconds.toFixed(1)} s`);
  return EXIT.OK;
}

export const serve: Command = { spec, run };
