/**
 * A TCP pass-through on loopback that counts the connections it accepts,
 * put in front of a real server to prove that something never connected to
 * it (a refused pull): the count is taken when the connection is accepted,
 * before any byte is read, so a client that had connected and then waited
 * for an answer is always counted before that answer.
 */
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface TcpCounter {
  /** host:port */
  address: string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTcpCounter(upstream: string): Promise<TcpCounter> {
  const [host = "127.0.0.1", port = "0"] = upstream.split(":");
  let connections = 0;
  const open = new Set<Socket>();
  const server = createServer((incoming) => {
    connections++;
    const outgoing = connect({ host, port: Number(port) });
    for (const socket of [incoming, outgoing]) {
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      socket.on("error", () => {
        incoming.destroy();
        outgoing.destroy();
      });
    }
    incoming.pipe(outgoing).pipe(incoming);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const listening = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${listening}`,
    port: listening,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
