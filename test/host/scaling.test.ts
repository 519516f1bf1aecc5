import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ workers: 2 });
});
afterAll(() => t?.close());

const deploy = (name: string, component: string, extra: Record<string, unknown>) =>
  t.deploy(name, { component: componentPath(component), ...extra });

async function instances(name: string): Promise<number> {
  const text = await (await t.fetch("/metrics")).text();
  const match = new RegExp(`^joule_instances\\{function="${name}"\\} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("scaling and isolation", () => {
  it('isolation "per-request" gives every request a fresh instance', async () => {
    expect((await deploy("isolated", "misbehave", { isolation: "per-request" })).status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const response = await t.fetch("/fn/isolated/count");
      expect(response.headers.get("x-joule-cold-start")).toBe("true");
      expect((await response.json()).requests).toBe(1);
    }
  });

  it("runs at most scaling.maxInstances at once, queues up to scaling.maxQueue, and refuses the rest", async () => {
    expect((await deploy("narrow", "misbehave", { scaling: { maxInstances: 1, maxQueue: 1 } })).status).toBe(201);
    const responses = await Promise.all([1, 2, 3].map(() => t.fetch("/fn/narrow/busy?ms=300")));
    const codes = responses.map((r) => r.status).sort();
    expect(codes).toEqual([200, 200, 503]);
    const refused = responses.find((r) => r.status === 503) as Response;
    expect((await refused.json()).error).toMatchObject({
      code: "JOULE_ERR_CAPACITY",
      details: { maxInstances: 1, maxQueue: 1 },
    });
  });

  it("pre-warms scaling.minInstances at deploy and after a restart", async () => {
    expect((await deploy("prewarmed", "tiny", { scaling: { minInstances: 2 } })).status).toBe(201);
    await eventually(async () => (await instances("prewarmed")) === 2);
    const first = await t.fetch("/fn/prewarmed/");
    expect(first.headers.get("x-joule-cold-start")).toBe("false");
    await t.restart();
    await eventually(async () => (await instances("prewarmed")) === 2);
    expect((await t.fetch("/fn/prewarmed/")).headers.get("x-joule-cold-start")).toBe("false");
  });

  it("drops instances idle for scaling.idleTimeoutMs (scale to zero), and starts again on demand", async () => {
    expect((await deploy("sleepy", "tiny", { scaling: { idleTimeoutMs: 1000 } })).status).toBe(201);
    expect((await t.fetch("/fn/sleepy/")).headers.get("x-joule-cold-start")).toBe("true");
    await eventually(async () => (await instances("sleepy")) === 1);
    await eventually(async () => (await instances("sleepy")) === 0, 5000);
    const again = await t.fetch("/fn/sleepy/");
    expect(await again.text()).toBe("tiny");
    expect(again.headers.get("x-joule-cold-start")).toBe("true");
  });
});
