/**
 * The rxrpc command: subcommands for people who run AFS and Rx services,
 * built on the library's public API. bin/rxrpc.js calls run().
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { helpText, parseCommand, wrap } from './args';
import { call } from './call';
import { Command, Context } from './command';
import { describeError, exitCodeOf, EXIT, hintOf, isErrorLike } from './errors';
import { doctor } from './doctor';
import { toJson } from './format';
import { gen } from './gen';
import { Io, processIo } from './io';
import { probe } from './probe';
import { serve } from './serve';
import { stats } from './stats';

export const COMMANDS: readonly Command[] = [doctor, probe, call, serve, stats, gen];

/** The package's version, from the package.json above this module (build/lib/cli or dist/cli). */
export function packageVersion(): string {
  for (let dir = __dirname, i = 0; i < 5; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'rxrpc' && pkg.version) return pkg.version;
    } catch {
      // not here
    }
  }
  return 'unknown';
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length));
  const lines = [
    `rxrpc ${packageVersion()}: Rx RPC over Linux's AF_RXRPC sockets, from the command line`,
    '',
    'Usage: rxrpc COMMAND [OPTIONS] [ARGUMENTS]',
    '       rxrpc COMMAND --help',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`),
    '',
    ...wrap('Every command takes --json: one JSON document on stdout, with "ok" true or false, also when it fails ' +
      '(serve: one JSON object per line). Progress is shown on stderr, only when it is a terminal.', 78),
    '',
    'Exit status:',
    '  0    done',
    '  1    the operation failed: the peer aborted, a timeout, a network error, bad input data',
    '  2    usage error: an unknown option, a missing or malformed value',
    '  3    this system cannot do it: no AF_RXRPC (see rxrpc doctor), no addon, not Linux',
    '  130  interrupted (SIGINT)',
  ];
  return `${lines.join('\n')}\n`;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  const wantsJson = argv.includes('--json');
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.spec.name === rest[0]) : undefined;
    if (name === 'help' && rest[0] !== undefined && !topic) {
      io.stderr.write(`rxrpc: no command ${JSON.stringify(rest[0])}; see rxrpc --help\n`);
      return EXIT.USAGE;
    }
    (name === undefined ? io.stderr : io.stdout).write(topic ? helpText(topic.spec) : mainHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${packageVersion()}\n`);
    return EXIT.OK;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  const ctx: Context = { io, json: wantsJson, command: name };
  try {
    if (!command) {
      const err = new Error(`no command ${JSON.stringify(name)}; the commands are ${COMMANDS.map((c) => c.spec.name).join(', ')}`);
      return report(ctx, Object.assign(err, { code: 'ERR_RXRPC_CLI_USAGE' }), EXIT.USAGE);
    }
    const parsed = parseCommand(command.spec, rest);
    ctx.json = parsed.values.json === true;
    if (parsed.values.help) {
      io.stdout.write(helpText(command.spec));
      return EXIT.OK;
    }
    return await command.run(parsed, ctx);
  } catch (err) {
    return report(ctx, err, exitCodeOf(err));
  }
}

function report(ctx: Context, err: unknown, exitCode: number): number {
  if (ctx.json) {
    ctx.io.stdout.write(`${toJson({ ok: false, command: ctx.command, exitCode, error: describeError(err) })}\n`);
  } else {
    ctx.io.stderr.write(`rxrpc ${ctx.command}: ${isErrorLike(err) ? err.message : String(err)}\n`);
    const hint = hintOf(err);
    if (hint) ctx.io.stderr.write(`  ${hint}\n`);
    // RXRPC_DEBUG=1: the stack, for whoever reports a problem.
    if (ctx.io.env.RXRPC_DEBUG && isErrorLike(err)) ctx.io.stderr.write(`${err.stack}\n`);
  }
  return exitCode;
}

/** The process entry (bin/rxrpc.js): exit code from main(), output flushed before exiting. */
export function run(argv: readonly string[] = process.argv.slice(2)): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // Everything is closed by now; should a handle still hold the loop, do not hang a script.
      setTimeout(() => process.exit(code), 2000).unref();
    },
    (err) => {
      process.stderr.write(`rxrpc: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.FAILED;
    },
  );
}
