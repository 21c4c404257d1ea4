/**
 * Security for AF_RXRPC: rxkad keys made from Node, the Client and Server
 * `security` options, and the RxGK challenge codecs.
 */
import { addKey, createKeyring, Keyring, KeyOptions, LinuxKey, uniqueDescription } from './keyring';
import { checkServerKeys, ServerKey } from './options';
import { encodeRxkadV1Payload, encodeXdrTokenPayload, RxkadToken, XdrToken } from './rxkad';

export {
  addKey, createKeyring, describeKey, KeyDescription, Keyring, KeyOptions, KeyringRef, LinuxKey,
} from './keyring';
export {
  encodeRxkadV1Payload, encodeXdrTokenPayload, isWeakDesKey, RXGK_ENCTYPES, rxkadServerKey, RxkadToken,
  RXRPC_SECURITY_NONE, RXRPC_SECURITY_RXKAD, RXRPC_SECURITY_YFS_RXGK, SECURITY_LEVELS, SecurityLevel,
  ServerKeyPayload, Time, XdrToken, YfsRxgkToken, yfsRxgkServerKey,
} from './rxkad';
export { ClientSecurity, isSecurityAbortCode, minimumLevelWarning, ServerKey, ServerSecurity } from './options';
export { Challenge, decodeChallenge, encodeChallenge, encodeOobControl, OobControl } from './rxgk';
export { deriveKeys, krb5Decrypt, krb5Encrypt, RXGK_SERVER_ENC_TOKEN } from './krb5';
export { MintedRxgkToken, mintRxgkToken, openRxgkToken, RxgkMintOptions, RxgkTokenFields } from './rxgk-token';
export { MintOptions, mintRxkadToken, openTicket, randomDesKey, sealTicket, TicketFields, ticketPlaintext } from './ticket';

export interface ClientKeyOptions extends KeyOptions {
  /** The key's description (what RXRPC_SECURITY_KEY names). Default: one of our own, unique. */
  description?: string;
}

/** An "rxrpc" key holding one rxkad token (the v1 payload); owned: close() revokes it. */
export function createRxkadKey(token: RxkadToken, options: ClientKeyOptions = {}): LinuxKey {
  const payload = encodeRxkadV1Payload(token);
  return addKey('rxrpc', options.description ?? uniqueDescription('rxrpc-client'), payload, options);
}

/** An "rxrpc" key holding 1 to 8 tokens for a cell (the XDR payload); owned. */
export function createTokenKey(cell: string, tokens: readonly XdrToken[], options: ClientKeyOptions = {}): LinuxKey {
  const payload = encodeXdrTokenPayload(cell, tokens);
  return addKey('rxrpc', options.description ?? uniqueDescription('rxrpc-client'), payload, options);
}

/**
 * A keyring of "rxrpc_s" server keys for `services` (what RXRPC_SECURITY_KEYRING
 * names); owned: close() revokes it and its keys. A key without `service` is
 * installed for every service given.
 */
export function createServerKeyring(services: readonly number[], keys: readonly ServerKey[],
  options: ClientKeyOptions = {}): Keyring {
  const checked = checkServerKeys(keys, services);
  const ring = createKeyring(options.description ?? uniqueDescription('rxrpc-server'), options);
  try {
    for (const k of checked) ring.add('rxrpc_s', k.description, k.payload);
  } catch (err) {
    ring.close();
    throw err;
  }
  return ring;
}
