import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..', '..');

test('the README example runs as written (against the built package)', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)![1];
  const file = '/tmp/readme-example.mjs';
  writeFileSync(file, example.replace("from 'rxrpc'", `from ${JSON.stringify(join(root, 'build', 'lib', 'index.js'))}`));
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = out.trim().split('\n');
  // The probe's summary and capabilities, then the later call's service and reply bytes.
  expect(lines[0]).toMatch(/^(not upgraded|upgraded|probe broken by RX_PROTOCOL_ERROR).* (\[ 0 \]|\[ 1 \]|undefined)$/);
  expect(lines[1]).toMatch(/^(52|2503) <Buffer 00 00 00 01 00 00 00 0[01]>$/);
});
