/** rxrpc gen: TypeScript from an rxgen interface file, through the library's generateFile(). */
import { generateFile } from '../index';
import { CommandSpec, listOption, Parsed, stringOption } from './args';
import { Command, Context, emit, say } from './command';
import { EXIT, UsageError } from './errors';
import { interfaceError } from './xdr-model';

const spec: CommandSpec = {
  name: 'gen',
  summary: 'TypeScript (types, XDR codecs, client, server) from an rxgen interface file',
  usage: ['gen FILE.xg -o DIR [-I DIR]... [-D NAME[=VALUE]]... [--import-from MODULE] [--error-table FILE.et]... [--json]'],
  description: [
    'Writes DIR/NAME.ts for FILE.xg (DIR is created if missing), as generateFile() of the library does. Errors in the ' +
    'interface are reported as file:line:column: what was expected, with exit status 1.',
  ],
  options: {
    out: { type: 'string', short: 'o', value: 'DIR', help: 'where to write the generated file (required)' },
    include: { type: 'string', short: 'I', multiple: true, value: 'DIR', help: 'where #include files are searched' },
    define: { type: 'string', short: 'D', multiple: true, value: 'NAME[=VALUE]', help: 'a macro defined before the first line, as with cpp' },
    'import-from': { type: 'string', value: 'MODULE', help: 'the module the output imports the library from (default rxrpc)' },
    'error-table': { type: 'string', multiple: true, value: 'FILE', help: 'an error table (.et) whose codes name abort codes' },
  },
  positionals: { min: 1, max: 1, names: 'FILE.xg' },
  examples: ['rxrpc gen interfaces/vl.xg -o gen', 'rxrpc gen afs.xg -o src/gen -I include -D AFS_64BIT=1'],
};

async function run(parsed: Parsed, ctx: Context): Promise<number> {
  const out = stringOption(parsed, 'out');
  if (out === undefined || out === '') throw new UsageError('-o DIR is required: where to write the generated TypeScript');
  const defines: Record<string, string> = {};
  for (const d of listOption(parsed, 'define')) {
    const m = /^([A-Za-z_]\w*)(?:=(.*))?$/.exec(d);
    if (!m) throw new UsageError(`-D must be NAME or NAME=VALUE, not ${JSON.stringify(d)}`);
    defines[m[1]] = m[2] ?? '1';
  }
  const importFrom = stringOption(parsed, 'import-from');
  const file = parsed.positionals[0];
  let written: string[];
  try {
    written = generateFile(file, out, {
      includePaths: listOption(parsed, 'include'), defines, errorTables: listOption(parsed, 'error-table'),
      ...(importFrom ? { importFrom } : {}),
    });
  } catch (err) {
    throw interfaceError(err);
  }
  emit(ctx, true, { input: file, written });
  for (const w of written) say(ctx, `wrote ${w}`);
  return EXIT.OK;
}

export const gen: Command = { spec, run };
