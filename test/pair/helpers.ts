import { AgentLink } from '../../scripts/pair/control';
import { guestInfo, GuestInfo, raiseBacklog } from '../../scripts/pair/workload';

/** This guest's and the other's addresses on the link, and the link's interface. */
export const SELF = process.env.RXRPC_PAIR_SELF ?? '';
export const PEER = process.env.RXRPC_PAIR_PEER ?? '';
export const DEV = process.env.RXRPC_PAIR_IF ?? 'eth0';

const role = process.env.RXRPC_PAIR_ROLE;
/** Suite names of this guest's kernel and the other's, for test names. */
export const SELF_SUITE = (role === 'b' ? process.env.RXRPC_PAIR_KERNEL_B : process.env.RXRPC_PAIR_KERNEL_A) ?? '?';
export const PEER_SUITE = (role === 'b' ? process.env.RXRPC_PAIR_KERNEL_A : process.env.RXRPC_PAIR_KERNEL_B) ?? '?';

/** The agent in the other VM, and what both guests run. */
export async function connectPeer(): Promise<{ agent: AgentLink; self: GuestInfo; peer: GuestInfo }> {
  if (!SELF || !PEER) throw new Error('RXRPC_PAIR_SELF/RXRPC_PAIR_PEER are not set: these tests run in scripts/vm/pair.sh');
  raiseBacklog();
  const agent = await AgentLink.connect(PEER);
  const peer = await agent.call<GuestInfo>('hello');
  return { agent, self: guestInfo(), peer };
}

/** A line in the test output (jest's console adds a stack to each). */
export function report(line: string): void {
  process.stdout.write(`${line}\n`);
}
