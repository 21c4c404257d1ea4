// The addon must load on any glibc from 2.28 on: every versioned glibc symbol
// it imports must be GLIBC_2.28 or older (objdump -T lists them).
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..', '..');
const addon = join(root, 'build', 'Release', 'rxrpc.node');
const LIMIT = [2, 28];

/** objdump from binutils, installed with the project's helper (scripts/vm/common.sh) when missing. */
function objdump(): string {
  if (spawnSync('objdump', ['--version']).status !== 0) {
    const r = spawnSync('bash', ['-c', `. ${JSON.stringify(join(root, 'scripts', 'vm', 'common.sh'))} && need binutils`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`objdump is missing and binutils could not be installed: ${r.stderr}`);
  }
  return execFileSync('objdump', ['-T', addon], { encoding: 'utf8' });
}

test('the addon needs no glibc symbol version newer than GLIBC_2.28', () => {
  const symbols = [...objdump().matchAll(/\(GLIBC_(\d+)\.(\d+)(?:\.\d+)?\)\s+(\S+)/g)]
    .map(([, major, minor, name]) => ({ version: [Number(major), Number(minor)], name }));
  // The parse found glibc's symbols at all (socket, sendmsg, ...), so an empty list below means something.
  expect(symbols.map((s) => s.name)).toEqual(expect.arrayContaining(['socket', 'sendmsg', 'recvmsg']));
  const newer = symbols
    .filter(({ version: [major, minor] }) => major > LIMIT[0] || (major === LIMIT[0] && minor > LIMIT[1]))
    .map(({ version, name }) => `${name} (GLIBC_${version.join('.')})`)
    .sort();
  expect(newer).toEqual([]);
});
