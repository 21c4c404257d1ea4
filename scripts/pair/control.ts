/**
 * The control channel between the two guests of scripts/vm/pair.sh: JSON
 * lines over TCP on the link itself. One side (scripts/pair/agent.ts) serves
 * named commands; the other connects and calls them. TCP recovers from the
 * faults netem puts on the link, so commands get through (slowly) under loss.
 */
import { connect, createServer, Server as NetServer, Socket } from 'node:net';

/** The agent's TCP port on the link (clear of AFS's 7000-7009 and the tests' Rx ports). */
export const CONTROL_PORT = 18700;

export type Command = (args: any) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Reply {
  id: number;
  result?: unknown;
  error?: { message: string; code?: string };
}

function lines(socket: Socket, onLine: (line: string) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    buffered += text;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line) onLine(line);
    }
  });
}

/** Serves `commands` on address:port; `onClose` hears of every connection that ends. */
export function serveCommands(address: string, port: number, commands: Record<string, Command>,
  onConnection: (socket: Socket) => void): Promise<NetServer> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    onConnection(socket);
    lines(socket, (line) => {
      let request: { id: number; cmd: string; args?: unknown };
      try {
        request = JSON.parse(line);
      } catch {
        socket.destroy(new Error(`not JSON: ${line.slice(0, 80)}`));
        return;
      }
      const command = commands[request.cmd];
      Promise.resolve()
        .then(() => {
          if (!command) throw new Error(`unknown command ${request.cmd}`);
          return command(request.args ?? {});
        })
        .then(
          (result) => ({ id: request.id, result }),
          (err: Error & { code?: string }) => ({ id: request.id, error: { message: err?.message ?? String(err), code: err?.code } }),
        )
        .then((reply: Reply) => {
          if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
        });
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

/** A connection to the agent. */
export class AgentLink {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    lines(socket, (line) => {
      const reply = JSON.parse(line) as Reply;
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (reply.error) w.reject(Object.assign(new Error(`agent: ${reply.error.message}`), { code: reply.error.code }));
      else w.resolve(reply.result);
    });
    const fail = (err?: Error) => {
      this.closedError ??= err ?? new Error('agent: the control connection closed');
      for (const w of this.waiting.values()) w.reject(this.closedError);
      this.waiting.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  /**
   * Connects to the agent, retrying until it listens (the other VM boots at
   * the same time) or `timeout` ms have passed.
   */
  static async connect(address: string, port = CONTROL_PORT, timeout = 180000): Promise<AgentLink> {
    const until = Date.now() + timeout;
    let last: Error | undefined;
    while (Date.now() < until) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: address, port, timeout: 5000 });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
          s.once('timeout', () => s.destroy(new Error(`connect to ${address}:${port} timed out`)));
        });
        socket.setTimeout(0);
        socket.setNoDelay(true);
        return new AgentLink(socket);
      } catch (err) {
        last = err as Error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    throw new Error(`no agent at ${address}:${port} after ${timeout} ms (the other VM did not start it): ${last?.message}`);
  }

  /** Runs a command on the agent. */
  call<T = unknown>(cmd: string, args: unknown = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ id, cmd, args })}\n`);
    });
  }

  close(): void {
    this.socket.end();
  }
}
