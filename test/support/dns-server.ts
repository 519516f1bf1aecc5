/**
 * A scripted DNS server on loopback (UDP) for outbound-HTTP tests: answers
 * A queries with whatever `answer` returns for the name and how many times
 * it was asked, with TTL 0 so nothing is cached. AAAA queries get no data.
 */
import { createSocket } from "node:dgram";

export interface DnsServer {
  address: string;
  /** A queries received, by name. */
  asked: Map<string, number>;
  close(): Promise<void>;
}

function readName(packet: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = start;
  for (let length = packet[at] ?? 0; length > 0; length = packet[at] ?? 0) {
    labels.push(packet.subarray(at + 1, at + 1 + length).toString("ascii"));
    at += 1 + length;
  }
  return { name: labels.join(".").toLowerCase(), end: at + 1 };
}

export async function startDnsServer(answer: (name: string, times: number) => string[]): Promise<DnsServer> {
  const socket = createSocket("udp4");
  const asked = new Map<string, number>();
  socket.on("message", (query, peer) => {
    const { name, end } = readName(query, 12);
    const type = query.readUInt16BE(end);
    const question = query.subarray(12, end + 4);
    let addresses: string[] = [];
    if (type === 1) {
      const times = (asked.get(name) ?? 0) + 1;
      asked.set(name, times);
      addresses = answer(name, times);
    }
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180, 2); // a response, recursion available, no error
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const records = addresses.map((address) => {
      const record = Buffer.alloc(16);
      record.writeUInt16BE(0xc00c, 0); // the name, by pointer to the question
      record.writeUInt16BE(1, 2); // A
      record.writeUInt16BE(1, 4); // IN
      record.writeUInt32BE(0, 6); // TTL 0
      record.writeUInt16BE(4, 10);
      address.split(".").forEach((octet, i) => {
        record[12 + i] = Number(octet);
      });
      return record;
    });
    socket.send(Buffer.concat([header, question, ...records]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    asked,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
