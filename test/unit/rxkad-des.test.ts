/**
 * The DES and the ticket minter that tokens without a KDC rely on: FIPS 81's
 * known answers, a cross-check with OpenSSL's legacy provider, and the ticket
 * layout the kernel's rxkad_decrypt_ticket() parses.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isWeakDesKey } from '../../lib/security/rxkad';
import { desDecryptBlock, desEncryptBlock, desPcbcDecrypt, desPcbcEncrypt, withOddParity } from '../../lib/security/des';
import { mintRxkadToken, openTicket, randomDesKey, sealTicket, ticketPlaintext } from '../../lib/security/ticket';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('rxkad DES', () => {
  test.each([
    // FIPS 81, appendix B (ECB), and the two classic worked examples.
    ['0123456789abcdef', '4e6f772069732074', '3fa40e8a984d4815'],
    ['0123456789abcdef', '68652074696d6520', '6a271787ab8883f9'],
    ['0123456789abcdef', '666f7220616c6c20', '893d51ec4b563b53'],
    ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'],
    ['0e329232ea6d0d73', '8787878787878787', '0000000000000000'],
  ])('key %s encrypts %s to %s and back', (key, plain, cipher) => {
    expect(desEncryptBlock(hex(key), hex(plain)).toString('hex')).toBe(cipher);
    expect(desDecryptBlock(hex(key), hex(cipher)).toString('hex')).toBe(plain);
  });

  test('PCBC: each block is sealed with the previous plaintext and ciphertext folded in, and decrypts back', () => {
    const key = hex('0123456789abcdef');
    const iv = hex('1234567890abcdef');
    const plain = Buffer.from('Now is the time for all ', 'latin1');
    const sealed = desPcbcEncrypt(key, iv, plain);
    // By definition: C1 = E(P1 ^ IV), C2 = E(P2 ^ P1 ^ C1), ...
    const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]));
    const c1 = desEncryptBlock(key, xor(plain.subarray(0, 8), iv));
    const c2 = desEncryptBlock(key, xor(plain.subarray(8, 16), xor(plain.subarray(0, 8), c1)));
    expect(sealed.subarray(0, 8)).toEqual(c1);
    expect(sealed.subarray(8, 16)).toEqual(c2);
    expect(desPcbcDecrypt(key, iv, sealed)).toEqual(plain);
    expect(() => desPcbcEncrypt(key, iv, Buffer.alloc(7))).toThrow(RangeError);
  });

  test('agrees with OpenSSL (legacy provider) on random keys and blocks, ECB and PCBC', () => {
    const cases = Array.from({ length: 8 }, () => ({ key: randomBytes(8).toString('hex'), data: randomBytes(40).toString('hex') }));
    // OpenSSL has no PCBC: the child chains ECB blocks the PCBC way.
    const script = `
      const c = require('crypto');
      const out = JSON.parse(process.argv[1]).map(({ key, data }) => {
        const k = Buffer.from(key, 'hex'), d = Buffer.from(data, 'hex');
        const ecb = (b) => { const e = c.createCipheriv('des-ecb', k, null); e.setAutoPadding(false); return Buffer.concat([e.update(b), e.final()]); };
        let chain = k, res = [];
        for (let i = 0; i < d.length; i += 8) {
          const p = d.subarray(i, i + 8), x = Buffer.from(p.map((v, j) => v ^ chain[j]));
          const ct = ecb(x); res.push(ct); chain = Buffer.from(p.map((v, j) => v ^ ct[j]));
        }
        return { ecb: ecb(d.subarray(0, 8)).toString('hex'), pcbc: Buffer.concat(res).toString('hex') };
      });
      console.log(JSON.stringify(out));`;
    const openssl = JSON.parse(execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script, JSON.stringify(cases)], {
      encoding: 'utf8',
    })) as Array<{ ecb: string; pcbc: string }>;
    const ours = cases.map(({ key, data }) => ({
      ecb: desEncryptBlock(hex(key), hex(data).subarray(0, 8)).toString('hex'),
      pcbc: desPcbcEncrypt(hex(key), hex(key), hex(data)).toString('hex'),
    }));
    expect(ours).toEqual(openssl);
  });

  test('odd parity is set on every byte; random keys are never weak', () => {
    const key = withOddParity(hex('0000000000000000'));
    expect(key.toString('hex')).toBe('0101010101010101');
    expect(isWeakDesKey(key)).toBe(true);
    for (let i = 0; i < 20; i++) {
      const k = randomDesKey();
      expect(isWeakDesKey(k)).toBe(false);
      for (const b of k) expect(b.toString(2).split('1').length % 2).toBe(0); // odd number of 1 bits
    }
  });
});

describe('rxkad tickets', () => {
  const serverKey = hex('9e2c7a4f1d3b5e6d');
  const sessionKey = hex('2a3b4c5d6e7f8091');

  test('the plaintext is the Kerberos 4 layout the kernel parses, padded with zeros to 8 bytes', () => {
    const plain = ticketPlaintext({
      serverKey, sessionKey, name: 'admin', instance: 'x', realm: 'TEST.RXRPC', address: [10, 1, 2, 3], life: 12,
      issue: 0x01020304, service: 'afs', serviceInstance: '',
    });
    const expected = Buffer.concat([
      Buffer.from([0]), Buffer.from('admin\0x\0TEST.RXRPC\0', 'latin1'), Buffer.from([10, 1, 2, 3]), sessionKey,
      Buffer.from([12]), Buffer.from([1, 2, 3, 4]), Buffer.from('afs\0\0', 'latin1'),
    ]);
    expect(plain.length % 8).toBe(0);
    expect(plain.subarray(0, expected.length)).toEqual(expected);
    expect(plain.subarray(expected.length)).toEqual(Buffer.alloc(plain.length - expected.length));
    // Flag bit 0: little-endian times.
    const le = ticketPlaintext({ serverKey, sessionKey, name: 'a', issue: 0x01020304, littleEndian: true });
    expect(le[0]).toBe(1);
    expect(le.includes(Buffer.from([4, 3, 2, 1]))).toBe(true);
  });

  test('a minted ticket opens with the server key and no other', () => {
    const ticket = sealTicket({ serverKey, sessionKey, name: 'user', issue: 1700000000 });
    expect(openTicket(serverKey, ticket)).toEqual(ticketPlaintext({ serverKey, sessionKey, name: 'user', issue: 1700000000 }));
    expect(openTicket(hex('1c2d3e4f5a6b7c8d'), ticket)).not.toEqual(openTicket(serverKey, ticket));
  });

  test('a token carries the ticket, its session key and the ticket\'s end as expiry', () => {
    const token = mintRxkadToken({ serverKey, kvno: 3, issue: 1700000000, life: 12 });
    expect(token.kvno).toBe(3);
    expect(token.expiry).toBe(1700000000 + 12 * 300);
    expect(openTicket(serverKey, token.ticket).includes(Buffer.from(token.sessionKey))).toBe(true);
  });

  test('what the kernel would refuse is refused by the minter, naming the value', () => {
    const named = (code: string, argument: string) => expect.objectContaining({ code, message: expect.stringContaining(`"${argument}"`) });
    expect(() => ticketPlaintext({ serverKey, sessionKey, name: 'x'.repeat(40) })).toThrow(named('ERR_INVALID_ARG_VALUE', 'name'));
    expect(() => ticketPlaintext({ serverKey, sessionKey, realm: 'tab\there' })).toThrow(named('ERR_INVALID_ARG_VALUE', 'realm'));
    expect(() => ticketPlaintext({ serverKey, sessionKey, life: 0 })).toThrow(named('ERR_OUT_OF_RANGE', 'life'));
    expect(() => ticketPlaintext({ serverKey, sessionKey, address: [1, 2, 3] })).toThrow(named('ERR_INVALID_ARG_TYPE', 'address'));
    expect(() => sealTicket({ serverKey: hex('0101010101010101'), sessionKey })).toThrow(named('ERR_INVALID_ARG_VALUE', 'serverKey'));
    expect(() => sealTicket({ serverKey, sessionKey: hex('e0e0e0e0f1f1f1f1') })).toThrow(named('ERR_INVALID_ARG_VALUE', 'sessionKey'));
  });
});
