/**
 * Names whose DNS answers try to steer outbound HTTP to a blocked address,
 * with answers scripted by a DNS server (JOULE_DNS_SERVERS).
 *
 * Tests send traffic only to loopback or into a network namespace they
 * made. Proving that the host connects to the address it checked needs it
 * to really connect to a public address, so that scenario runs in a
 * namespace of its own where the public address is local
 * (dns-rebinding.scenario.ts, test/support/netns.ts). A refusal that never
 * connects also runs here, in-process, so it is covered where no namespace
 * can be made.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { netnsSkip, runInNetns } from "../support/netns.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";
import type { Scenario } from "./dns-rebinding.scenario.ts";

/** An address outside every blocked range (example.com's); only ever made local inside a namespace. */
const PUBLIC = "93.184.216.34";
const DENIED = { ok: false, code: "JOULE_ERR_CAPABILITY_DENIED" };

const netns = netnsSkip();
if (netns) console.warn(`skipping the DNS rebinding scenario, which needs a network namespace: ${netns}`);

describe.skipIf(netns !== "")("DNS answers that point at blocked addresses, in a network namespace", () => {
  let result: Scenario;

  beforeAll(async () => {
    result = (await runInNetns(new URL("./dns-rebinding.scenario.ts", import.meta.url).pathname, {
      args: [componentPath("reach"), reachDir(), PUBLIC],
      addresses: [PUBLIC],
    })) as Scenario;
  });

  it("connect to the address that was checked, so a second answer (rebinding to loopback) is never used", () => {
    const { rebind, port } = result;
    // Asked once, and the public server got the request: the connection went to the checked address.
    expect(rebind.asked).toBe(1);
    expect(rebind.status).toBe(200);
    expect(rebind.answer).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(rebind.answer.body ?? "{}").headers).toMatchObject({ host: `rebind.test:${port}` });
    expect(rebind.seen.public).toEqual([{ method: "GET", url: "/echo", host: `rebind.test:${port}` }]);
    expect(rebind.seen.victim).toEqual([]);
  });

  it("refuse a name that answers a public and a loopback address together, before connecting to either", () => {
    const { mixed } = result;
    expect(mixed.answer).toMatchObject(DENIED);
    expect(mixed.answer.error).toContain("mixed.test resolves to 127.0.0.1, a loopback address");
    expect(mixed.asked).toBe(1);
    // The public address comes first in the answer and would pass alone: every answer is judged.
    expect(mixed.seen).toEqual({ public: [], victim: [] });
  });
});

describe("DNS answers that point at blocked addresses, in-process", () => {
  let t: TestHost;
  let dns: DnsServer;
  let victim: Upstream;

  beforeAll(async () => {
    [dns, victim] = await Promise.all([
      // Loopback first, unlike in the namespace: were the policy ever to let this name through, the host
      // would connect to the first answer, the victim on loopback, and send nothing off the machine.
      // Public first (every answer judged, not just the first) is the namespace's case above.
      startDnsServer((name) => (name === "mixed.test" ? ["127.0.0.1", PUBLIC] : [])),
      startUpstream(),
    ]);
    t = await startTestHost({ dnsServers: dns.address });
    const response = await t.deploy("rebinder", {
      component: componentPath("reach"),
      functionDir: reachDir(),
      capabilities: {
        kv: ["cache"],
        outboundHttp: [`http://mixed.test:${victim.port}`],
        files: { "/data/": "assets/", "/config.json": "config.json" },
      },
      public: true,
    });
    expect(response.status, await response.text()).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await dns?.close();
    await victim?.close();
  });

  it("refuse a name that answers a loopback and a public address together", async () => {
    const url = `http://mixed.test:${victim.port}/echo`;
    const answer = await (await t.anonymous(`/fn/rebinder/fetch?${new URLSearchParams({ url })}`)).json();
    expect(answer).toMatchObject(DENIED);
    expect(answer.error).toContain("mixed.test resolves to 127.0.0.1, a loopback address");
    expect(dns.asked.get("mixed.test")).toBe(1);
    expect(victim.seen).toEqual([]);
  });
});
