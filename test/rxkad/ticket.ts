/**
 * Token minting for the rxkad tests: the library's mintRxkadToken with the
 * defaults the tests share (kvno 1, principal "user").
 */
import { MintOptions, mintRxkadToken, randomDesKey } from '../../lib/security/ticket';
import { RxkadToken } from '../../lib/security/rxkad';

export { randomDesKey };
export type TokenOptions = Omit<MintOptions, 'kvno'> & { kvno?: number };

export function mintToken(options: TokenOptions): RxkadToken {
  return mintRxkadToken({ kvno: 1, name: 'user', ...options });
}
