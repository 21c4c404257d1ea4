/** What every subcommand is given and how it reports. */
import { CommandSpec, Parsed } from './args';
import { toJson } from './format';
import { Io } from './io';

export interface Context {
  io: Io;
  /** --json: one JSON document on stdout, nothing else there. */
  json: boolean;
  command: string;
}

export interface Command {
  spec: CommandSpec;
  /** Returns the exit code; throws for failures main() turns into messages. */
  run(parsed: Parsed, ctx: Context): Promise<number>;
}

/** Text for people, on stdout (not under --json). */
export function say(ctx: Context, text: string): void {
  if (!ctx.json) ctx.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A note for people, on stderr (not under --json). */
export function note(ctx: Context, text: string): void {
  if (!ctx.json) ctx.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** The one JSON document of a run (under --json). */
export function emit(ctx: Context, ok: boolean, doc: Record<string, unknown>): void {
  if (ctx.json) ctx.io.stdout.write(`${toJson({ ok, command: ctx.command, ...doc })}\n`);
}

/** One JSON line of a long-running command (serve). */
export function emitLine(ctx: Context, doc: Record<string, unknown>): void {
  if (ctx.json) ctx.io.stdout.write(`${toJson(doc, 0)}\n`);
}
