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

  test('lengths within the bytes decode as before; findCallId still stops at the bytes it has', () => {
    expect(decodeSockaddr(name, 36).port).toBe(7001);
    expect(decodeControl(control, 24).callId).toBe(0);
    expect(findCallId(control, 1000)).toBe(0);
    expect(() => decodeControl(control, 25)).toThrow(expect.objectContaining({ code: 'ERR_RXRPC_MALFORMED' }));
  });
});
