/**
 * The DNS-rebinding scenario of dns-rebinding.test.ts, run by it in a
 * network namespace of its own (test/support/netns.ts) where the public
 * address it names (example.com's) is an address of the namespace's
 * loopback interface: an address outside every blocked range that the host
 * may connect to, without a packet leaving the namespace.
 *
 * Everything is inside: a scripted DNS server, a real host that resolves
 * with it, and two servers on the same port, one on the public address and the victim
 * on 127.0.0.1, so the server that answers shows which address the host
 * connected to. Prints one JSON line (a `Scenario`) and leaves the judging
 * to the test.
 *
 *   node dns-rebinding.scenario.ts <reach component.wasm> <reach guest dir> <public address>
 *
 * The paths come from the test: what global setup built is only known
 * through vitest's `inject`, which a plain script does not have.
 */
import { startDnsServer } from "../support/dns-server.ts";
import { startTestHost } from "../support/host.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

/** What one request of the guest saw and what reached each server meanwhile. */
export interface Case {
  /** The invocation's status, and the reach guest's JSON answer. */
  status: number;
  answer: { ok: boolean; status?: number; body?: string; code?: string; error?: string };
  /** A queries the DNS server got for the name during the case. */
  asked: number;
  seen: { public: Seen[]; victim: Seen[] };
}

export interface Seen {
  method: string;
  url: string;
  host: string | undefined;
}

export interface Scenario {
  /** The port both servers listen on. */
  port: number;
  deployStatus: number;
  rebind: Case;
  mixed: Case;
}

const [component, functionDir, PUBLIC] = process.argv.slice(2);
if (!component || !functionDir || !PUBLIC) {
  throw new Error("usage: dns-rebinding.scenario.ts <component.wasm> <function dir> <public address>");
}

const dns = await startDnsServer((name, times) => {
  if (name === "mixed.test") return [PUBLIC, "127.0.0.1"];
  if (name === "rebind.test") return times === 1 ? [PUBLIC] : ["127.0.0.1"];
  return [];
});
const victim = await startUpstream();
// The same port as the victim: a second lookup answering 127.0.0.1 would reach the victim, not this one.
const publicServer = await startUpstream({ host: PUBLIC, port: victim.port });
const t = await startTestHost({ dnsServers: dns.address });

const seenSince = (server: Upstream, from: number): Seen[] =>
  server.seen.slice(from).map(({ method, url, headers }) => ({ method, url, host: headers.host }));

async function fetchVia(name: string): Promise<Case> {
  const [publicFrom, victimFrom, askedFrom] = [publicServer.seen.length, victim.seen.length, dns.asked.get(name) ?? 0];
  const url = `http://${name}:${victim.port}/echo`;
  const response = await t.anonymous(`/fn/rebinder/fetch?${new URLSearchParams({ url })}`);
  const text = await response.text();
  let answer: Case["answer"];
  try {
    answer = JSON.parse(text);
  } catch {
    answer = { ok: false, error: text };
  }
  return {
    status: response.status,
    answer,
    asked: (dns.asked.get(name) ?? 0) - askedFrom,
    seen: { public: seenSince(publicServer, publicFrom), victim: seenSince(victim, victimFrom) },
  };
}

try {
  const deployed = await t.deploy("rebinder", {
    component,
    functionDir,
    capabilities: {
      kv: ["cache"],
      outboundHttp: [`http://mixed.test:${victim.port}`, `http://rebind.test:${victim.port}`],
      files: { "/data/": "assets/", "/config.json": "config.json" },
    },
    limits: { timeoutMs: 5000 },
    public: true,
  });
  if (deployed.status !== 201) throw new Error(`deploy: ${deployed.status} ${await deployed.text()}`);
  const result: Scenario = {
    port: victim.port,
    deployStatus: deployed.status,
    rebind: await fetchVia("rebind.test"),
    mixed: await fetchVia("mixed.test"),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await t.close();
  await Promise.all([dns.close(), victim.close(), publicServer.close()]);
}
