import fc from 'fast-check';
import { decodeControl, decodeSockaddr, encodeSockaddr, findCallId } from '../../lib/codec';
import { targets } from '../fuzz-targets';

// A few hundred runs per target on every npm test; npm run fuzz runs millions.
const RUNS = Number(process.env.RXRPC_FUZZ_RUNS ?? 300);

describe('property-based fuzzing of the encoders and decoders', () => {
  test.each(targets().map((t) => [t.name, t] as const))('%s', (_name, target) => {
    fc.assert(target.property, { numRuns: RUNS });
  });
});

describe('what fuzzing found', () => {
  const name = encodeSockaddr({ service: 1, address: '169.254.0.1', port: 7001 });
  const control = Buffer.alloc(24);
  control.writeBigUInt64LE(24n, 0);
  control.writeInt32LE(272, 8);
  control.writeInt32LE(1, 12);

  // A negative or fractional length reached DataView, which threw an untyped
  // RangeError ("Invalid DataView length") or read nothing ("Offset is
  // outside the bounds of the DataView").
  test.each([
    ['decodeSockaddr', () => decodeSockaddr(name, -1)],
    ['decodeSockaddr', () => decodeSockaddr(name, NaN)],
    ['decodeSockaddr', () => decodeSockaddr(name, 24.5)],
    ['decodeControl', () => decodeControl(control, -1)],
    ['decodeControl', () => decodeControl(control, 2.5)],
    ['findCallId', () => findCallId(control, -8)],
  ])('%s with a length that is not a whole number of bytes: ERR_OUT_OF_RANGE naming it', (_fn, call) => {
    expect(call).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('"length"') }));
  });

  test('the decoders refuse what is not bytes with ERR_INVALID_ARG_TYPE', () => {
    for (const decode of [decodeSockaddr, decodeControl, findCallId]) {
      expect(() => decode('not bytes' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });

  // fast-check made RXRPC_RESPONDED, a control message of unknown type and RXRPC_OOB_ID (seed
  // -1886480232): an out-of-band message, which belongs to no call and decodes with call id -1; the
  // property had asked every decoded message for a call id of 0 or more.
  test('an out-of-band message with a control message of unknown type among them decodes with call id -1 and the type listed', () => {
    const cmsg = (type: number, data: Buffer) => {
      const b = Buffer.alloc(16 + ((data.length + 7) & ~7));
      b.writeBigUInt64LE(BigInt(16 + data.length), 0);
      b.writeInt32LE(272, 8);
      b.writeInt32LE(type, 12);
      data.copy(b, 16);
      return b;
    };
    const id = Buffer.alloc(8);
    id.writeBigUInt64LE(17895955851123227666n);
    const bytes = Buffer.concat([cmsg(18, Buffer.from([24, 78, 100, 128])), cmsg(0, Buffer.from('a4070656205c7393', 'hex')), cmsg(15, id)]);
    expect(decodeControl(bytes)).toEqual({ callId: -1, kind: 'responded', code: 0, unknown: [0],
      oob: { id: 17895955851123227666n, responded: Buffer.from([24, 78, 100, 128]) } });
  });

  test('lengths within the bytes decode as before; findCallId still stops at the bytes it has', () => {
    expect(decodeSockaddr(name, 36).port).toBe(7001);
    expect(decodeControl(control, 24).callId).toBe(0);
    expect(findCallId(control, 1000)).toBe(0);
    expect(() => decodeControl(control, 25)).toThrow(expect.objectContaining({ code: 'ERR_RXRPC_MALFORMED' }));
  });
});
