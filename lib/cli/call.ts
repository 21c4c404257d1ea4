/**
 * rxrpc call: one Rx call. The request as hex, from stdin, or as the
 * arguments of a procedure of an interface file (.xg, through the generator);
 * the reply as a hex dump, raw bytes, or decoded by the interface.
 */
import { performance } from 'node:perf_hooks';
import { AFS, Client, RxAbortError, TimeoutError } from '../index';
import {
  CommandSpec, flag, integerOption, listOption, parseHex, Parsed, parseService, parseTarget, showAddress, stringOption,
} from './args';
import { Command, Context, emit, note, say } from './command';
import { describeError, EXIT, UsageError } from './errors';
import { codeWithName, elapsed, hexDump, ms, toJson } from './format';
import { readAll } from './io';
import { InterfaceCodec, loadInterface, ProcModel } from './xdr-model';

/** Default ports of the AFS services that have them. */
export function defaultPortOf(service: number): number | undefined {
  if (service === AFS.VL.service || service === AFS.VL.upgradeTo) return AFS.VL.port;
  if (service === AFS.FS.service || service === AFS.FS.upgradeTo) return AFS.FS.port;
  return undefined;
}

const spec: CommandSpec = {
  name: 'call',
  summary: 'make one Rx call and show the reply',
  usage: [
    'call HOST[:PORT] --service N --hex HEX [--raw] [--timeout MS] [--json]',
    'call HOST[:PORT] --service N - < request.bin',
    'call HOST[:PORT] --service N --xg FILE.xg --proc NAME [ARG...] [-I DIR]',
  ],
  description: [
    'The request is given in hex (--hex), read from stdin (-), or built from the arguments of procedure NAME of an ' +
    'rxgen interface file (--xg): its opcode, then one argument per IN or INOUT parameter, in order. Integers are ' +
    'decimal, 0x hex or the name of a constant; strings and char arrays are given as they are; opaque in hex; ' +
    'structs, unions, arrays and optional data as JSON (struct fields left out are zero). With --xg the reply is ' +
    'decoded into the OUT parameters and abort codes are named from the interface\'s error tables.',
    'The port defaults to 7003 for services 52 and 2503 and to 7000 for 1 and 2500. A negative argument goes after ' +
    '"--" (as in: -- -1).',
    'Exit status: 0 for a reply, 1 when the call was aborted or timed out or the reply does not decode.',
  ],
  options: {
    service: { type: 'string', value: 'N', help: 'the service ID to call (required)' },
    hex: { type: 'string', value: 'HEX', help: 'the request in hex' },
    xg: { type: 'string', value: 'FILE', help: 'an rxgen interface file to build the request from' },
    proc: { type: 'string', value: 'NAME', help: 'the procedure of --xg to call (name, with or without prefix, or opcode)' },
    include: { type: 'string', short: 'I', multiple: true, value: 'DIR', help: 'where the interface\'s #include files are' },
    raw: { type: 'boolean', help: 'write the reply\'s bytes to stdout, nothing else' },
    timeout: { type: 'string', value: 'MS', help: 'time allowed for the call (default 10000)' },
    exclusive: { type: 'boolean', help: 'a connection of its own for the call' },
  },
  positionals: { min: 1, max: Infinity, names: 'HOST[:PORT], then - or the procedure\'s arguments' },
  examples: [
    'rxrpc call 127.0.0.1:17003 --service 52 --hex 00010001',
    'printf \'\\0\\0\\2\\2\' | rxrpc call 127.0.0.1:7003 --service 52 - --raw | xxd',
    'rxrpc call 198.18.0.1 --service 52 --xg vl.xg --proc GetEntryByNameU root.cell',
  ],
};

interface Interface {
  codec: InterfaceCodec;
  proc: ProcModel;
  name: string;
}

async function request(parsed: Parsed, ctx: Context): Promise<{ body: Buffer; iface?: Interface }> {
  const rest = parsed.positionals.slice(1);
  const hex = stringOption(parsed, 'hex');
  const xg = stringOption(parsed, 'xg');
  const stdin = rest.length === 1 && rest[0] === '-' && !xg;
  const sources = [hex !== undefined, xg !== undefined, stdin].filter(Boolean).length;
  if (sources !== 1) {
    throw new UsageError(sources === 0 ? 'give the request: --hex HEX, - (stdin) or --xg FILE --proc NAME [ARG...]'
      : 'give the request one way only: --hex, - (stdin) or --xg');
  }
  if (!xg) {
    if (stringOption(parsed, 'proc') !== undefined || listOption(parsed, 'include').length) throw new UsageError('--proc and -I go with --xg');
    if (!stdin && rest.length) throw new UsageError(`unexpected arguments ${rest.map((r) => JSON.stringify(r)).join(' ')} (arguments are for --xg)`);
    return { body: hex !== undefined ? parseHex('--hex', hex) : await readAll(ctx.io.stdin) };
  }
  const procName = stringOption(parsed, 'proc');
  const model = loadInterface(xg, { includePaths: listOption(parsed, 'include') });
  const codec = new InterfaceCodec(model);
  if (procName === undefined) {
    const list = model.packages.flatMap((p) => p.procs.map((x) => `${p.prefix}${x.name}(${codec.signature(x)})`));
    throw new UsageError(`--xg needs --proc NAME; ${xg} defines ${list.length ? list.join('; ') : 'no procedures'}`);
  }
  const { pkg, proc } = codec.findProc(procName);
  return { body: codec.encodeRequest(pkg, proc, rest), iface: { codec, proc, name: `${pkg.prefix}${proc.name}` } };
}

async function run(parsed: Parsed, ctx: Context): Promise<number> {
  const serviceText = stringOption(parsed, 'service');
  if (serviceText === undefined) throw new UsageError('--service N is required: the service ID to call');
  const service = parseService('--service', serviceText);
  const timeout = integerOption(parsed, 'timeout', 1, 3600000, 10000);
  const raw = flag(parsed, 'raw');
  if (raw && ctx.json) throw new UsageError('--raw and --json cannot be used together');
  const target = await parseTarget(parsed.positionals[0], defaultPortOf(service));
  const { body, iface } = await request(parsed, ctx);
  const where = showAddress(target.address, target.port);
  const client = new Client();
  const started = performance.now();
  const base: Record<string, unknown> = { target, service, ...(iface ? { procedure: iface.name, opcode: iface.proc.opcode } : {}), requestBytes: body.length };
  try {
    const reply = await client.call({ address: target.address, port: target.port, service }, body,
      { timeout, exclusive: flag(parsed, 'exclusive') });
    const timeMs = elapsed(started);
    let decoded: Record<string, unknown> | undefined;
    let decodeError: unknown;
    if (iface) {
      try {
        decoded = iface.codec.decodeReply(iface.proc, reply.data);
      } catch (err) {
        decodeError = err;
      }
    }
    if (raw) {
      ctx.io.stdout.write(reply.data);
    } else {
      emit(ctx, decodeError === undefined, {
        ...base, answeredBy: reply.service, timeMs, replyBytes: reply.data.length, reply: reply.data,
        ...(decoded ? { decoded } : {}), ...(decodeError ? { error: describeError(decodeError) } : {}),
      });
      say(ctx, `${iface ? `${iface.name}: ` : ''}reply from ${where}, service ${reply.service}, in ${ms(timeMs)}: ${reply.data.length} bytes`);
      if (decoded) say(ctx, toJson(decoded));
      else say(ctx, hexDump(reply.data).trimEnd());
    }
    if (decodeError) {
      if (!ctx.json) {
        note(ctx, `rxrpc call: the reply does not decode as ${iface!.name}: ${(decodeError as Error).message}`);
        if (!raw) say(ctx, hexDump(reply.data).trimEnd());
      }
      return EXIT.FAILED;
    }
    return EXIT.OK;
  } catch (err) {
    const timeMs = elapsed(started);
    if (err instanceof RxAbortError || err instanceof TimeoutError) {
      const names = iface?.codec.errorNames();
      const code = err instanceof RxAbortError ? err.abortCode : undefined;
      const fromTable = code !== undefined ? names?.get(code) : undefined;
      const name = fromTable?.name ?? (err instanceof RxAbortError ? err.abortName : undefined);
      const message = err instanceof TimeoutError
        ? `no reply within ${timeout} ms (the call was aborted with RX_CALL_TIMEOUT)`
        : `the call was aborted ${err.local ? 'here' : 'by the peer (or a kernel on the way)'} with code ` +
          `${codeWithName(err.abortCode, name)}${fromTable?.message ? `: ${fromTable.message}` : ''} after ${ms(timeMs)}`;
      emit(ctx, false, {
        ...base, timeMs,
        ...(code !== undefined ? { abort: { code, ...(name ? { name } : {}), ...(fromTable?.message ? { message: fromTable.message } : {}) } } : {}),
        error: describeError(err),
      });
      note(ctx, `rxrpc call: ${where} service ${service}: ${message}`);
      return EXIT.FAILED;
    }
    throw err;
  } finally {
    client.close();
  }
}

export const call: Command = { spec, run };
