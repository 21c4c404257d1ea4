/**
 * rxrpc call --xg: requests built from command-line arguments by an
 * interface's model, replies decoded by it. The model here is written by hand
 * in the generator's form (lib/rxgen/model.ts); the same is checked against
 * the generator's model of the project's vl.xg.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, exitCodeOf, UsageError } from '../../lib/cli/errors';
import { describe as describeShape, InterfaceCodec, loadInterface, Model } from '../../lib/cli/xdr-model';
import { generateFile, MalformedError, XdrWriter } from '../../lib/index';
import { REPO, rxrpc } from './cli-support';

const i32 = { k: 'prim', prim: 'int32' } as const;
const u32 = { k: 'prim', prim: 'uint32' } as const;

const MODEL: Model = {
  consts: [{ name: 'MAXNAME', value: 8 }, { name: 'FLAG_RW', value: 0x1000 }, { name: 'GREETING', value: 'hi' }],
  types: [
    { kind: 'enum', name: 'color', members: [{ name: 'RED', value: 1 }, { name: 'GREEN', value: 2 }] },
    { kind: 'struct', name: 'point', fields: [{ name: 'x', shape: i32 }, { name: 'y', shape: i32 }] },
    {
      kind: 'struct', name: 'entry', fields: [
        { name: 'name', shape: { k: 'chars', size: 8 } },
        { name: 'flags', shape: u32 },
        { name: 'color', shape: { k: 'named', name: 'color' } },
        { name: 'ids', shape: { k: 'vector', of: u32, size: 3 } },
        { name: 'where', shape: { k: 'optional', of: { k: 'named', name: 'point' } } },
        { name: 'big', shape: { k: 'prim', prim: 'int64' } },
        { name: 'ok', shape: { k: 'prim', prim: 'bool' } },
        { name: 'tag', shape: { k: 'prim', prim: 'char' } },
        { name: 'port', shape: { k: 'prim', prim: 'ushort' } },
      ],
    },
    {
      kind: 'union', name: 'result', discriminant: { name: 'kind', shape: { k: 'named', name: 'color' } }, bool: false,
      arms: [{ value: 1, label: 'RED', field: { name: 'count', shape: u32 } }, { value: 2, label: 'GREEN' }],
    },
    { kind: 'typedef', name: 'entries', shape: { k: 'array', of: { k: 'named', name: 'entry' }, max: 4 } },
  ],
  packages: [{
    prefix: 'T_', procs: [
      { name: 'Lookup', opcode: 101, split: false, params: [
        { name: 'name', direction: 'IN', shape: { k: 'string', max: 8 } },
        { name: 'mask', direction: 'IN', shape: u32 },
        { name: 'entry', direction: 'OUT', shape: { k: 'named', name: 'entry' } },
      ] },
      { name: 'Store', opcode: 102, split: false, params: [
        { name: 'all', direction: 'IN', shape: { k: 'named', name: 'entries' } },
        { name: 'blob', direction: 'IN', shape: { k: 'opaque', max: 4 } },
        { name: 'res', direction: 'INOUT', shape: { k: 'named', name: 'result' } },
        { name: 'key', direction: 'IN', shape: { k: 'fixedOpaque', size: 2 } },
        { name: 'id', direction: 'IN', shape: { k: 'named', name: 'afsUUID' } },
      ] },
      { name: 'Fetch', opcode: 103, split: true, params: [] },
    ],
  }],
  errorTables: [{ name: 'T', codes: [{ name: 'T_NOENT', code: 5000, message: 'no such entry' }] }],
};

const codec = new InterfaceCodec(MODEL);
const req = (proc: string, args: string[]) => {
  const { pkg, proc: p } = codec.findProc(proc);
  return codec.encodeRequest(pkg, p, args);
};
const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
};

describe('cli XDR by interface model', () => {
  test('procedures by name, prefixed name or opcode; a wrong name lists what there is', () => {
    expect(codec.findProc('Lookup').proc.opcode).toBe(101);
    expect(codec.findProc('T_Store').proc.opcode).toBe(102);
    expect(codec.findProc('103').proc.name).toBe('Fetch');
    expect(usage(() => codec.findProc('Nope'))).toMatch(/no procedure "Nope" in the interface; it has T_Lookup \(101\), T_Store \(102\), T_Fetch \(103\)/);
    expect(codec.signature(codec.findProc('Lookup').proc)).toBe('name string<8>, mask uint32, OUT entry entry');
  });

  test('a request: the opcode, then each IN argument; constants by name', () => {
    expect(req('Lookup', ['root', 'FLAG_RW']).toString('hex')).toBe(
      new XdrWriter().u32(101).string('root').u32(0x1000).toBuffer().toString('hex'));
    expect(req('Lookup', ['', '0x10']).toString('hex')).toBe('00000065' + '00000000' + '00000010');
  });

  test('structs from JSON, fields left out are zero; arrays, optional data, unions, opaque, UUIDs', () => {
    const got = req('Store', [
      JSON.stringify([{ name: 'a', color: 'GREEN', ids: [1, 2, 3], where: { x: -1, y: 2 }, big: '-9007199254740993', ok: true, tag: -1, port: 65535 }, {}]),
      'beef', '{"kind":"RED","count":9}', '0x0102', 'deadbeef-1234-5678-9abc-010203feff06',
    ]);
    const w = new XdrWriter().u32(102).u32(2);
    // entry 1
    w.chars('a', 8).u32(0).i32(2).u32(1).u32(2).u32(3).bool(true).i32(-1).i32(2)
      .u64(BigInt.asUintN(64, -9007199254740993n)).bool(true).i32(-1).u32(65535);
    // entry 2: all zero, the enum at its first member
    w.chars('', 8).u32(0).i32(1).u32(0).u32(0).u32(0).bool(false).u64(0n).bool(false).i32(0).u32(0);
    w.opaque(Buffer.from('beef', 'hex'));
    w.i32(1).u32(9);
    w.fixed(Buffer.from([1, 2]));
    // afsUUID: its bytes as sign-extended chars, as OpenAFS sends them
    w.u32(0xdeadbeef).u32(0x1234).u32(0x5678).i32(-102).i32(-68).i32(1).i32(2).i32(3).i32(-2).i32(-1).i32(6);
    expect(got.toString('hex')).toBe(w.toBuffer().toString('hex'));
  });

  test('bad arguments name the parameter, the field and the rule', () => {
    expect(usage(() => req('Lookup', ['x']))).toBe('T_Lookup takes 2 arguments: name string<8>, mask uint32; got 1');
    expect(usage(() => req('Lookup', ['much too long', '1']))).toMatch(/^name: too long: 13 bytes in UTF-8, more than 8/);
    expect(usage(() => req('Lookup', ['a', '-1']))).toMatch(/^mask: must be an integer from 0 to 4294967295, not "-1"/);
    expect(usage(() => req('Lookup', ['a', 'NOPE']))).toMatch(/^mask: expected an integer \(or a constant of the interface\)/);
    expect(usage(() => req('Lookup', ['a', 'GREETING']))).toMatch(/^mask: expected an integer/); // a string constant
    const store = (all: string, res = '{"kind":2}', id = '{}') => req('Store', [all, '', res, '0000', id]);
    expect(usage(() => store('[{"nam":"a"}]'))).toMatch(/^all\[0\]: struct entry has no field nam \(it has name, flags/);
    expect(usage(() => store('[{"name":"12345678"}]'))).toMatch(/^all\[0\]\.name: too long for char\[8\]/);
    expect(usage(() => store('[{"ids":[1,2]}]'))).toMatch(/^all\[0\]\.ids: must have exactly 3 items, not 2/);
    expect(usage(() => store('[{"color":"BLUE"}]'))).toMatch(/^all\[0\]\.color: expected an integer/);
    expect(usage(() => store('[{"color":3}]'))).toMatch(/^all\[0\]\.color: 3 is not a member of enum color \(RED, GREEN\)/);
    expect(usage(() => store('[{},{},{},{},{}]'))).toMatch(/^all: at most 4 items, not 5/);
    expect(usage(() => store('[{"big":"99999999999999999999"}]'))).toMatch(/^all\[0\]\.big: must be from -2\^63 to 2\^63-1/);
    expect(usage(() => store('{not json'))).toMatch(/^all: expected JSON/);
    expect(usage(() => store('[]', '{"kind":"GREEN","count":1}'))).toMatch(/^res: union result with kind = "GREEN" has no field count/);
    expect(usage(() => store('[]', '{"count":1}'))).toMatch(/^res: union result needs its discriminant kind/);
    expect(usage(() => store('[]', '{"kind":2}', 'not-a-uuid'))).toMatch(/^id: expected a UUID/);
    expect(usage(() => req('Store', ['[]', '0102030405', '{"kind":2}', '00', '{}']))).toMatch(/^blob: 5 bytes, more than 4/);
    expect(usage(() => req('Store', ['[]', '', '{"kind":2}', '00', '{}']))).toMatch(/^key: must be exactly 2 bytes, not 1/);
    expect(usage(() => req('Fetch', []))).toMatch(/T_Fetch is a split procedure/);
    // Every such mistake is a usage error: exit 2.
    expect(exitCodeOf(new UsageError('x'))).toBe(EXIT.USAGE);
  });

  test('a reply decodes into the OUT and INOUT parameters; enums by name, 64-bit as bigint', () => {
    const w = new XdrWriter().chars('vol', 8).u32(7).i32(2).u32(1).u32(2).u32(3).bool(false)
      .u64(2n ** 63n + 5n).bool(true).i32(-3).u32(80);
    expect(codec.decodeReply(codec.findProc('Lookup').proc, w.toBuffer())).toEqual({
      entry: { name: 'vol', flags: 7, color: 'GREEN', ids: [1, 2, 3], where: null, big: -(2n ** 63n) + 5n, ok: true, tag: -3, port: 80 },
    });
    const res = new XdrWriter().i32(1).u32(42).toBuffer();
    expect(codec.decodeReply(codec.findProc('Store').proc, res)).toEqual({ res: { kind: 'RED', count: 42 } });
  });

  test('a reply that is short, too long or has a bad union arm is MalformedError', () => {
    const p = codec.findProc('Store').proc;
    expect(() => codec.decodeReply(p, Buffer.alloc(2))).toThrow(MalformedError);
    expect(() => codec.decodeReply(p, new XdrWriter().i32(2).u32(0).toBuffer())).toThrow(/unread bytes/);
    expect(() => codec.decodeReply(p, new XdrWriter().i32(9).toBuffer())).toThrow(/union result: no arm for kind = 9/);
  });

  test('error tables name abort codes', () => {
    expect(codec.errorNames().get(5000)).toEqual({ name: 'T_NOENT', message: 'no such entry' });
  });

  test('shapes are described as the interface writes them', () => {
    expect(describeShape({ k: 'array', of: u32, max: 0xffffffff })).toBe('uint32<>');
    expect(describeShape({ k: 'optional', of: { k: 'named', name: 'point' } })).toBe('*point');
    expect(describeShape({ k: 'fixedOpaque', size: 16 })).toBe('opaque[16]');
  });
});

describe('cli and the generator (lib/rxgen)', () => {
  const vlXg = join(REPO, 'interfaces', 'vl.xg');

  test('gen writes what generateFile() writes; call --xg encodes as the generated client does', async () => {
    const out = join(tmpdir(), `rxrpc-gen-${process.pid}`);
    const r = await rxrpc(['gen', vlXg, '-o', out]);
    try {
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`wrote ${join(out, 'vl.ts')}\n`);
      const direct = join(out, 'direct');
      generateFile(vlXg, direct);
      expect(readFileSync(join(out, 'vl.ts'), 'utf8')).toBe(readFileSync(join(direct, 'vl.ts'), 'utf8'));
      const json = await rxrpc(['gen', vlXg, '-o', out, '--json']);
      expect(JSON.parse(json.stdout)).toEqual({ ok: true, command: 'gen', input: vlXg, written: [join(out, 'vl.ts')] });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    // Requests as the generated client sends them, for the project's vl.xg.
    const vl = new InterfaceCodec(loadInterface(vlXg));
    const { pkg, proc } = vl.findProc('GetEntryByNameU');
    expect(vl.encodeRequest(pkg, proc, ['root.cell']).toString('hex'))
      .toBe(new XdrWriter().u32(527).string('root.cell').toBuffer().toString('hex'));
    const l = vl.findProc('ListAttributesN2');
    expect(vl.encodeRequest(l.pkg, l.proc, ['{"Mask":"VLLIST_FLAG","flag":"VLF_RWEXISTS"}', '', '0']).toString('hex'))
      .toBe(new XdrWriter().u32(534).u32(0x10).u32(0).i32(0).i32(0).u32(0).i32(0x1000).string('').i32(0).toBuffer().toString('hex'));
    expect(vl.errorNames().get(363524)?.name).toBe('VL_NOENT');
    // An error in an interface file: file:line:column, exit 1.
    const bad = join(tmpdir(), `rxrpc-bad-${process.pid}.xg`);
    writeFileSync(bad, 'package X_\nFoo(IN int a = 2;\n');
    try {
      const e = await rxrpc(['gen', bad, '-o', out]);
      expect(e.code).toBe(1);
      expect(e.stderr).toMatch(new RegExp(`${bad.replace(/[.]/g, '\\.')}:2:\\d+: `));
    } finally {
      rmSync(bad, { force: true });
    }
  });
});
