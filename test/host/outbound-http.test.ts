import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

let t: TestHost;
let up: Upstream;

const FILES = { "/data/": "assets/", "/config.json": "config.json" };

beforeAll(async () => {
  [t, up] = await Promise.all([startTestHost(), startUpstream()]);
  const response = await t.fetch("/v1/functions/reach", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      component: { path: componentPath("reach") },
      functionDir: reachDir(),
      // Loopback is private: naming the address in the grant is the explicit allow.
      capabilities: { kv: ["cache"], outboundHttp: [up.origin], files: FILES },
      limits: { timeoutMs: 3000 },
    }),
  });
  expect(response.status, await response.text()).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await up?.close();
});

const fetchVia = async (url: string, extra: Record<string, string> = {}) =>
  (await t.fetch(`/fn/reach/fetch?${new URLSearchParams({ url, ...extra })}`)).json();

describe("outbound HTTP", () => {
  it("reaches a granted origin with the standard fetch", async () => {
    const answer = await fetchVia(`${up.origin}/echo`, { method: "POST", body: "ping" });
    expect(answer.ok).toBe(true);
    expect(answer.status).toBe(200);
    const echoed = JSON.parse(answer.body);
    expect(echoed).toMatchObject({ method: "POST", body: "ping" });
  });
});
