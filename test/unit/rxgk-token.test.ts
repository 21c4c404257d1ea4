/**
 * RFC 8009 encryption (krb5.ts) against the RFC's own test vectors, and
 * YFS-RxGK tokens minted with a service key and opened again.
 */
import fc from 'fast-check';
import {
  deriveKeys, krb5Decrypt, krb5Encrypt, mintRxgkToken, openRxgkToken, RXGK_SERVER_ENC_TOKEN,
} from '../../lib/security';

const hex = (s: string) => Buffer.from(s, 'hex');

// RFC 8009 Appendix A: key derivation for usage 2, and encryption with a given confounder.
const KEYS = [
  { enctype: 19, key: '3705D96080C17728A0E800EAB6E0D23C', ke: '9B197DD1E8C5609D6E67C3E37C62C72E', ki: '9FDA0E56AB2D85E1569A688696C26A6C' },
  {
    enctype: 20,
    key: '6D404D37FAF79F9DF0D33568D320669800EB4836472EA8A026D16B7182460C52',
    ke: '56AB22BEE63D82D7BC5227F6773F8EA7A5EB1C825160C38312980C442E5C7E49',
    ki: '69B16514E3CD8E56B82010D5C73012B622C4D00FFC23ED1F',
  },
];
const ENCRYPTIONS = [
  [19, '', '7E5895EAF2672435BAD817F545A37148', 'EF85FB890BB8472F4DAB20394DCA781DAD877EDA39D50C870C0D5A0A8E48C718'],
  [19, '000102030405', '7BCA285E2FD4130FB55B1A5C83BC5B24', '84D7F30754ED987BAB0BF3506BEB09CFB55402CEF7E6877CE99E247E52D16ED4421DFDF8976C'],
  [19, '000102030405060708090A0B0C0D0E0F', '56AB21713FF62C0A1457200F6FA9948F',
    '3517D640F50DDC8AD3628722B3569D2AE07493FA8263254080EA65C1008E8FC295FB4852E7D83E1E7C48C37EEBE6B0D3'],
  [19, '000102030405060708090A0B0C0D0E0F1011121314', 'A7A4E29A4728CE10664FB64E49AD3FAC',
    '720F73B18D9859CD6CCB4346115CD336C70F58EDC0C4437C5573544C31C813BCE1E6D072C186B39A413C2F92CA9B8334A287FFCBFC'],
  [20, '', 'F764E9FA15C276478B2C7D0C4E5F58E4', '41F53FA5BFE7026D91FAF9BE959195A058707273A96A40F0A01960621AC612748B9BBFBE7EB4CE3C'],
  [20, '000102030405', 'B80D3251C1F6471494256FFE712D0B9A',
    '4ED7B37C2BCAC8F74F23C1CF07E62BC7B75FB3F637B9F559C7F664F69EAB7B6092237526EA0D1F61CB20D69D10F2'],
  [20, '000102030405060708090A0B0C0D0E0F', '53BF8A0D105265D4E276428624CE5E63',
    'BC47FFEC7998EB91E8115CF8D19DAC4BBBE2E163E87DD37F49BECA92027764F68CF51F14D798C2273F35DF574D1F932E40C4FF255B36A266'],
  [20, '000102030405060708090A0B0C0D0E0F1011121314', '763E65367E864F02F55153C7E3B58AF1',
    '40013E2DF58E8751957D2878BCD2D6FE101CCFD556CB1EAE79DB3C3EE86429F2B2A602AC86FEF6ECB647D6295FAE077A1FEB517508D2C16B4192E01F62'],
] as const;

describe('Kerberos 5 (RFC 8009)', () => {
  test.each(KEYS)('enctype $enctype: Ke and Ki for usage 2 are the RFC\'s', ({ enctype, key, ke, ki }) => {
    const keys = deriveKeys(enctype, hex(key), 2);
    expect(keys.ke.toString('hex').toUpperCase()).toBe(ke);
    expect(keys.ki.toString('hex').toUpperCase()).toBe(ki);
  });

  test.each(ENCRYPTIONS)('enctype %d: %s encrypts to the RFC\'s ciphertext and decrypts back', (enctype, plain, conf, ct) => {
    const key = hex(KEYS.find((k) => k.enctype === enctype)!.key);
    expect(krb5Encrypt(enctype, key, 2, hex(plain), hex(conf)).toString('hex').toUpperCase()).toBe(ct);
    expect(krb5Decrypt(enctype, key, 2, hex(ct)).toString('hex').toUpperCase()).toBe(plain);
  });

  test('any plaintext length survives a round trip; a changed byte, another usage or another key is refused', () => {
    fc.assert(fc.property(fc.constantFrom(19, 20), fc.uint8Array({ maxLength: 100 }), fc.nat(), (enctype, plain, at) => {
      const key = Buffer.alloc(enctype === 19 ? 16 : 32, 9);
      const ct = krb5Encrypt(enctype, key, RXGK_SERVER_ENC_TOKEN, plain);
      expect(krb5Decrypt(enctype, key, RXGK_SERVER_ENC_TOKEN, ct)).toEqual(Buffer.from(plain));
      const bad = Buffer.from(ct);
      bad[at % bad.length] ^= 1;
      expect(() => krb5Decrypt(enctype, key, RXGK_SERVER_ENC_TOKEN, bad)).toThrow(/checksum mismatch/);
      expect(() => krb5Decrypt(enctype, key, 1035, ct)).toThrow(/checksum mismatch/);
      expect(() => krb5Decrypt(enctype, Buffer.alloc(key.length, 8), RXGK_SERVER_ENC_TOKEN, ct)).toThrow(/checksum mismatch/);
    }), { numRuns: 200 });
  });

  test('enctypes without an implementation, wrong key lengths and short ciphertexts get typed errors naming the value', () => {
    expect(() => krb5Encrypt(18, Buffer.alloc(32), 2, Buffer.alloc(1))).toThrow(expect.objectContaining({
      code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/enctype.*19 or 20.*18/s),
    }));
    expect(() => krb5Encrypt(99, Buffer.alloc(32), 2, Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => krb5Encrypt(19, Buffer.alloc(15), 2, Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => krb5Decrypt(19, Buffer.alloc(16), 2, Buffer.alloc(31))).toThrow(expect.objectContaining({ code: 'ERR_RXRPC_MALFORMED' }));
  });
});

describe('YFS-RxGK tokens', () => {
  const serverKey = Buffer.alloc(32, 0x5a);

  test('a minted token opens with the service key and carries what was asked for', () => {
    const t = mintRxgkToken({ serverKey, kvno: 7, enctype: 20, level: 'auth', begin: 1000, end: 5000, lifetime: 60, bytelife: 30 });
    expect(t).toMatchObject({ type: 'yfs-rxgk', begin: 1000, end: 5000, level: 'auth', enctype: 20, lifetime: 60, bytelife: 30 });
    expect(t.key).toHaveLength(32);
    expect(t.ticket.readUInt32BE(0)).toBe(7);
    expect(t.ticket.readUInt32BE(4)).toBe(20);
    expect(t.ticket.length % 4).toBe(0);
    expect(openRxgkToken(serverKey, t.ticket)).toEqual({
      kvno: 7, enctype: 20, sessionEnctype: 20, sessionKey: Buffer.from(t.key), level: 1, begin: 1000, end: 5000,
      lifetime: 60, bytelife: 30, identities: 0,
    });
    expect(() => openRxgkToken(Buffer.alloc(32, 1), t.ticket)).toThrow(/checksum mismatch/);
  });

  test('the session key may be of another enctype than the service key; the default level is encrypt', () => {
    const t = mintRxgkToken({ serverKey, kvno: 1, enctype: 20, sessionEnctype: 19 });
    expect(t.key).toHaveLength(16);
    expect(openRxgkToken(serverKey, t.ticket)).toMatchObject({ enctype: 20, sessionEnctype: 19, level: 2 });
    expect(t.end - t.begin).toBe(36000);
  });

  test.each([
    [{ kvno: 1, enctype: 20, serverKey: Buffer.alloc(16) }, 'ERR_OUT_OF_RANGE', /serverKey/],
    [{ kvno: 1, enctype: 18, serverKey }, 'ERR_INVALID_ARG_VALUE', /enctype/],
    [{ kvno: -1, enctype: 20, serverKey }, 'ERR_OUT_OF_RANGE', /kvno/],
    [{ kvno: 1, enctype: 20, serverKey, level: 'secret' }, 'ERR_INVALID_ARG_VALUE', /level/],
    [{ kvno: 1, enctype: 20, serverKey, begin: 100, end: 100 }, 'ERR_OUT_OF_RANGE', /end/],
    [{ kvno: 1, enctype: 20, serverKey, bytelife: 64 }, 'ERR_OUT_OF_RANGE', /bytelife/],
    [{ kvno: 1, enctype: 20, serverKey, sessionKey: Buffer.alloc(5) }, 'ERR_OUT_OF_RANGE', /sessionKey/],
    [null, 'ERR_INVALID_ARG_TYPE', /options/],
  ])('%o is refused with %s', (options, code, message) => {
    expect(() => mintRxgkToken(options as never)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });

  test('opening arbitrary bytes, or a sealed token cut short or grown, gives a typed error or a result, never a crash', () => {
    const sealed = mintRxgkToken({ serverKey, kvno: 1, enctype: 20 }).ticket;
    const typed = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect((err as { code?: string }).code).toMatch(/^ERR_(RXRPC_MALFORMED|INVALID_ARG_VALUE|INVALID_ARG_TYPE|OUT_OF_RANGE)$/);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: sealed.length }), (bytes, cut) => {
      typed(() => openRxgkToken(serverKey, bytes));
      typed(() => openRxgkToken(serverKey, sealed.subarray(0, cut)));
      typed(() => openRxgkToken(serverKey, Buffer.concat([sealed, bytes])));
    }), { numRuns: 300 });
  });
});
