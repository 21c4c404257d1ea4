/**
 * The service-upgrade demonstration (placeholder until the client and server
 * API land): opens AF_RXRPC sockets and sets up a server the way an upgrading
 * server must be set up -- two services on one transport address, then
 * RXRPC_UPGRADEABLE_SERVICE, then listen -- printing each step.
 */
import { release } from 'node:os';
import { RawSocket } from '../lib/socket';

const FROM = 52; // AFS VL
const TO = 2503; // YFS VL
const address = '127.0.0.1';
const port = 17003;

function step(text: string): void {
  console.log(`- ${text}`);
}

const server = new RawSocket();
step(`kernel ${release()}: AF_RXRPC socket opened; highest control message type ${server.supportedCmsg()}`);
server.bind({ service: FROM, address, port });
step(`bound service ${FROM} on ${address}:${port}`);
server.bind({ service: TO, address, port });
step(`bound service ${TO} on the same transport address`);
server.setUpgradeableService(FROM, TO);
step(`RXRPC_UPGRADEABLE_SERVICE set: ${FROM} -> ${TO}`);
server.listen(10);
step('listening');
server.close();
step('closed');
