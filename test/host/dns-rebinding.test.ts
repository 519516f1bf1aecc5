/**
 * Names whose DNS answers try to steer outbound HTTP to a blocked address,
 * with answers scripted by a DNS server on loopback (JOULE_DNS_SERVERS).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

/** An address outside every blocked range (example.com's). */
const PUBLIC = "93.184.216.34";

let t: TestHost;
let dns: DnsServer;
let victim: Upstream;

beforeAll(async () => {
  [dns, victim] = await Promise.all([
    startDnsServer((name, times) => {
      if (name === "mixed.test") return [PUBLIC, "127.0.0.1"];
      if (name === "rebind.test") return times === 1 ? [PUBLIC] : ["127.0.0.1"];
      return [];
    }),
    startUpstream(),
  ]);
  t = await startTestHost({ dnsServers: dns.address });
  const response = await t.deploy("rebinder", {
    component: componentPath("reach"),
    functionDir: reachDir(),
    capabilities: {
      kv: ["cache"],
      outboundHttp: [`http://mixed.test:${victim.port}`, `http://rebind.test:${victim.port}`],
      files: { "/data/": "assets/", "/config.json": "config.json" },
    },
    // The connection to the public address may hang here (no internet): bound it.
    limits: { timeoutMs: 3000 },
    public: true,
  });
  expect(response.status, await response.text()).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await dns?.close();
  await victim?.close();
});

const fetchVia = async (url: string) => {
  const response = await t.anonymous(`/fn/rebinder/fetch?${new URLSearchParams({ url })}`);
  return { status: response.status, body: await response.text() };
};

describe("DNS answers that point at blocked addresses", () => {
  it("refuse a name that answers a public and a loopback address together", async () => {
    const { body } = await fetchVia(`http://mixed.test:${victim.port}/echo`);
    expect(JSON.parse(body)).toMatchObject({ ok: false, code: "JOULE_ERR_CAPABILITY_DENIED" });
    expect(JSON.parse(body).error).toContain("mixed.test resolves to 127.0.0.1, a loopback address");
    expect(victim.seen).toEqual([]);
  });

  it("connect to the address that was checked, so a second answer (rebinding to loopback) is never used", async () => {
    await fetchVia(`http://rebind.test:${victim.port}/echo`);
    // Asked once: the connection used the checked public address, not a fresh answer pointing at loopback.
    expect(dns.asked.get("rebind.test")).toBe(1);
    expect(victim.seen).toEqual([]);
  });
});
