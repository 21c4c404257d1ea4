// jest globalTeardown of the pair tests: the run is over, the agent may exit.
import { AgentLink } from '../../scripts/pair/control';

export default async function teardown(): Promise<void> {
  const peer = process.env.RXRPC_PAIR_PEER;
  if (!peer) return;
  const agent = await AgentLink.connect(peer, undefined, 10000);
  await agent.call('exit');
  agent.close();
}
