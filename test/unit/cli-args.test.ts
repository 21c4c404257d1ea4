import {
  abortCodeByName, CommandSpec, helpText, parseAbortCode, parseCommand, parseHex, parseInteger, parseTarget, parseUpgrade, showAddress,
} from '../../lib/cli/args';
import { EXIT, exitCodeOf, UsageError } from '../../lib/cli/errors';
import { codeWithName, columns, counts, hexDump, ms, spread, toJson, word } from '../../lib/cli/format';
import { Progress } from '../../lib/cli/io';
import { InvalidArgValueError, OutOfRangeError, RxAbortError } from '../../lib/index';

const spec: CommandSpec = {
  name: 'demo',
  summary: 'a command for the tests',
  usage: ['demo HOST [--count N]'],
  options: {
    count: { type: 'string', value: 'N', help: 'how many' },
    service: { type: 'string', multiple: true, value: 'N', help: 'a service' },
    verbose: { type: 'boolean', short: 'v', help: 'more' },
  },
  positionals: { min: 1, max: 1, names: 'HOST' },
};

const usage = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect(exitCodeOf(err)).toBe(EXIT.USAGE);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
};

describe('cli argument parsing', () => {
  test('options, repeatable options, short flags and positionals', () => {
    const p = parseCommand(spec, ['h', '--count', '3', '--service', '52', '--service=2503', '-v', '--json']);
    expect(p.positionals).toEqual(['h']);
    expect(p.values).toMatchObject({ count: '3', service: ['52', '2503'], verbose: true, json: true });
  });

  test('an unknown option, a missing value and the wrong number of arguments are usage errors naming them', () => {
    expect(usage(() => parseCommand(spec, ['h', '--frob']))).toMatch(/--frob/);
    expect(usage(() => parseCommand(spec, ['h', '--count']))).toMatch(/--count/);
    expect(usage(() => parseCommand(spec, []))).toMatch(/expected 1 argument \(HOST\), got 0/);
    expect(usage(() => parseCommand(spec, ['a', 'b']))).toMatch(/got 2: "a" "b"/);
    // A value that starts with a dash must be attached, and the message says how.
    expect(usage(() => parseCommand(spec, ['h', '--count', '-1']))).toMatch(/--count=-XYZ/);
    expect(parseCommand(spec, ['h', '--count=-1']).values.count).toBe('-1');
  });

  test('--help needs no positionals and lists every option with its value', () => {
    expect(parseCommand(spec, ['--help']).values.help).toBe(true);
    const text = helpText(spec);
    for (const s of ['rxrpc demo HOST [--count N]', '--count N', '--service N', '(repeatable)', '-v, --verbose', '--json', '-h, --help', 'Exit status']) {
      expect(text).toContain(s);
    }
  });

  test('integers: decimal and 0x hex within bounds; anything else names the option and the text', () => {
    expect(parseInteger('--n', '42', 0, 100)).toBe(42);
    expect(parseInteger('--n', '0x1f', 0, 100)).toBe(31);
    expect(parseInteger('--n', '-5', -10, 0)).toBe(-5);
    expect(usage(() => parseInteger('--n', '101', 0, 100))).toBe('--n must be an integer from 0 to 100, not "101"');
    for (const bad of ['1.5', '', 'ten', '1e3', '0x']) expect(usage(() => parseInteger('--n', bad, 0, 10000))).toMatch(/--n must be/);
  });

  test('hex: pairs of digits, 0x prefix, spaces and colons allowed; odd or non-hex refused with where', () => {
    expect(parseHex('--hex', '00010001').equals(Buffer.from([0, 1, 0, 1]))).toBe(true);
    expect(parseHex('--hex', '0xDE:AD be ef').equals(Buffer.from('deadbeef', 'hex'))).toBe(true);
    expect(parseHex('--hex', '').length).toBe(0);
    expect(usage(() => parseHex('--hex', 'abc'))).toMatch(/odd number of digits/);
    expect(usage(() => parseHex('--hex', '00zz'))).toMatch(/"z" at 2/);
  });

  test('abort codes: names the library knows, signed or unsigned numbers, never 0', () => {
    expect(abortCodeByName('RX_USER_ABORT')).toBe(-6);
    expect(abortCodeByName('rxgen_opcode')).toBe(-455);
    expect(abortCodeByName('VL_NOENT')).toBe(363524);
    expect(abortCodeByName('RXKADEXPIRED')).toBe(19270409);
    expect(parseAbortCode('--abort', 'RX_CALL_DEAD')).toBe(-1);
    expect(parseAbortCode('--abort', '4294967291')).toBe(-5); // u32 as the wire has it, shown signed
    expect(parseAbortCode('--abort', '363524')).toBe(363524);
    expect(parseAbortCode('--abort', 'MY_CODE', new Map([['MY_CODE', 42]]))).toBe(42);
    expect(usage(() => parseAbortCode('--abort', '0'))).toMatch(/must not be 0/);
    expect(usage(() => parseAbortCode('--abort', 'NO_SUCH'))).toMatch(/"NO_SUCH" is not an abort code .* --abort=-6/);
    expect(usage(() => parseAbortCode('--abort', '4294967296'))).toMatch(/from -2147483648 to 4294967295/);
  });

  test('upgrades: FROM:TO or FROM->TO, two different services', () => {
    expect(parseUpgrade('52:2503')).toEqual({ from: 52, to: 2503 });
    expect(parseUpgrade(' 1 -> 2500 ')).toEqual({ from: 1, to: 2500 });
    expect(usage(() => parseUpgrade('52'))).toMatch(/FROM:TO/);
    expect(usage(() => parseUpgrade('52:52'))).toMatch(/two different/);
    expect(usage(() => parseUpgrade('52:0'))).toMatch(/--upgrade TO must be an integer from 1 to 65535/);
  });

  test('targets: IPv4 with and without a port, IPv6 bracketed or bare, names looked up', async () => {
    await expect(parseTarget('127.0.0.1:7003', undefined)).resolves.toEqual({ host: '127.0.0.1', address: '127.0.0.1', port: 7003 });
    await expect(parseTarget('127.0.0.1', 7000)).resolves.toMatchObject({ port: 7000 });
    await expect(parseTarget('[::1]:17000', undefined)).resolves.toEqual({ host: '::1', address: '::1', port: 17000 });
    await expect(parseTarget('::1', 7003)).resolves.toEqual({ host: '::1', address: '::1', port: 7003 });
    await expect(parseTarget('[fe80::1]', 7003)).resolves.toMatchObject({ address: 'fe80::1', port: 7003 });
    const named = await parseTarget('localhost:7003', undefined);
    expect(['127.0.0.1', '::1']).toContain(named.address);
    expect(named.host).toBe('localhost');
  });

  test('targets: a missing port without a default, a bad port, an empty host, ambiguous colons', async () => {
    await expect(parseTarget('127.0.0.1', undefined)).rejects.toThrow(/has no port/);
    await expect(parseTarget('127.0.0.1:0', 7003)).rejects.toThrow(/port in "127.0.0.1:0" must be an integer from 1 to 65535/);
    await expect(parseTarget(':7003', undefined)).rejects.toThrow(/no host/);
    await expect(parseTarget('fe80::1:zz', undefined)).rejects.toThrow(/neither HOST:PORT nor an IPv6 address/);
  });

  test('addresses print with brackets for IPv6', () => {
    expect(showAddress('127.0.0.1', 7003)).toBe('127.0.0.1:7003');
    expect(showAddress('::1', 7003)).toBe('[::1]:7003');
  });
});

describe('cli exit codes', () => {
  test('environment errors are 3, refused arguments 2, the rest 1', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code, errno: -97, syscall: 'socket' });
    expect(exitCodeOf(errno('EAFNOSUPPORT'))).toBe(3);
    expect(exitCodeOf(Object.assign(new Error('x'), { code: 'ERR_RXRPC_UNSUPPORTED_PLATFORM' }))).toBe(3);
    expect(exitCodeOf(new Error('Could not locate the bindings file. Tried: ...'))).toBe(3);
    expect(exitCodeOf(new InvalidArgValueError('address', 'must be an IPv4 or IPv6 address', 'x'))).toBe(2);
    expect(exitCodeOf(new OutOfRangeError('port', 'a port', 0))).toBe(2);
    expect(exitCodeOf(new RxAbortError(-5))).toBe(1);
    expect(exitCodeOf(errno('ECONNREFUSED'))).toBe(1);
    expect(exitCodeOf('a string')).toBe(1);
  });
});

describe('cli output formatting', () => {
  test('hex dumps: offsets, two groups of eight, printable characters', () => {
    expect(hexDump(Buffer.alloc(0))).toBe('(empty)\n');
    const text = hexDump(Buffer.from('0001000141424344454647484950515253', 'hex'));
    expect(text).toBe(
      '00000000  00 01 00 01 41 42 43 44  45 46 47 48 49 50 51 52  |....ABCDEFGHIPQR|\n' +
      '00000010  53                                                |S|\n');
  });

  test('JSON: bytes as hex, 64-bit integers as decimal strings, maps as objects', () => {
    const doc = JSON.parse(toJson({ b: Buffer.from([1, 255]), u: new Uint8Array([16]), big: 2n ** 63n, m: new Map([['a', 1]]) }));
    expect(doc).toEqual({ b: '01ff', u: '10', big: '9223372036854775808', m: { a: 1 } });
  });

  test('durations, words, codes, columns, counts, spreads', () => {
    expect([ms(0.8412), ms(12.34), ms(1534.4)]).toEqual(['0.84 ms', '12.3 ms', '1534 ms']);
    expect(word(0xfeedf00d)).toBe('0xfeedf00d');
    expect(word(-1)).toBe('0xffffffff');
    expect(codeWithName(-455, 'RXGEN_OPCODE')).toBe('-455 (RXGEN_OPCODE)');
    expect(codeWithName(7, undefined)).toBe('7');
    expect(columns([['a', 'bb', 'c'], ['ddd', 'e', 'f']], '  ')).toBe('  a    bb  c\n  ddd  e   f\n');
    expect(counts({ x: 1, y: 3, a: 1 })).toBe('y 3, a 1, x 1');
    expect(counts({})).toBe('none');
    expect(spread([5, 1, 3, 2])).toEqual({ min: 1, median: 2.5, max: 5 });
    expect(spread([])).toBeUndefined();
  });

  test('progress is drawn only on a terminal, and cleared', () => {
    const writes: string[] = [];
    const tty = { isTTY: true, columns: 40, write: (s: string | Uint8Array) => writes.push(String(s)) };
    const p = new Progress(tty);
    p.update('probe 1 of 3');
    p.update('x'.repeat(100));
    p.done();
    expect(writes[0]).toBe('\r\x1b[Kprobe 1 of 3');
    expect(writes[1].length).toBeLessThanOrEqual(4 + 39); // cut to the terminal's width
    expect(writes[2]).toBe('\r\x1b[K');
    const piped: string[] = [];
    const q = new Progress({ isTTY: false, write: (s: string | Uint8Array) => piped.push(String(s)) });
    q.update('probe 1 of 3');
    q.done();
    expect(piped).toEqual([]);
  });
});
