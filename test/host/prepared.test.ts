import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  // One worker: every request meets the instances that worker made ahead.
  t = await startTestHost({ workers: 1 });
});
afterAll(() => t?.close());

const deploy = (name: string, extra: Record<string, unknown> = {}) =>
  t.deploy(name, { component: componentPath("misbehave"), ...extra });

async function coldStarts(name: string, instance: "prepared" | "new"): Promise<number> {
  const text = await (await t.fetch("/metrics")).text();
  const match = new RegExp(`^joule_cold_starts_total\\{function="${name}",instance="${instance}"\\} (\\d+)$`, "m").exec(
    text,
  );
  return match ? Number(match[1]) : 0;
}

const idle = () => new Promise((resolve) => setTimeout(resolve, 300));

describe("instances made ahead of need", () => {
  it("serve the cold start of another function of the same engine, with none of the first one's state", async () => {
    expect((await deploy("ahead-a", { env: { ONLY_A: "1" } })).status).toBe(201);
    for (let i = 1; i <= 3; i++) expect((await (await t.fetch("/fn/ahead-a/count")).json()).requests).toBe(i);
    // The worker prepares the next instance of this engine while it is idle, holding ahead-a's
    // snapshot already: a cold start of another function writes only the pages that differ.
    await idle();
    expect((await deploy("ahead-b", { env: { ONLY_B: "1" } })).status).toBe(201);
    await idle();
    const response = await t.fetch("/fn/ahead-b/count");
    expect(response.headers.get("x-joule-cold-start")).toBe("true");
    expect((await response.json()).requests).toBe(1);
    expect(await coldStarts("ahead-b", "prepared")).toBe(1);
    // What init left in the snapshot is ahead-b's own, in full.
    expect(await (await t.fetch("/fn/ahead-b/init-state")).json()).toMatchObject({ ran: 1, envKeys: ["ONLY_B"] });
    // The function the instance came from keeps its own warm instance and state.
    expect((await (await t.fetch("/fn/ahead-a/count")).json()).requests).toBe(4);
  });

  it('serve isolation "per-request" one fresh instance per request', async () => {
    expect((await deploy("ahead-isolated", { isolation: "per-request" })).status).toBe(201);
    for (let i = 0; i < 4; i++) {
      await idle();
      const response = await t.fetch("/fn/ahead-isolated/count");
      expect((await response.json()).requests).toBe(1);
    }
    expect(await coldStarts("ahead-isolated", "prepared")).toBeGreaterThanOrEqual(3);
  });
});

describe("worker affinity", () => {
  it("sends a request to the idle worker that holds its function warm", async () => {
    const two = await startTestHost({ workers: 2 });
    try {
      for (const name of ["sticky", "busy"]) {
        expect((await two.deploy(name, { component: componentPath("misbehave") })).status).toBe(201);
      }
      // Occupy one worker, so that "sticky" becomes warm on the other one only.
      const busy = two.fetch("/fn/busy/busy?ms=800");
      await new Promise((resolve) => setTimeout(resolve, 300));
      const first = await two.fetch("/fn/sticky/count");
      expect((await first.json()).requests).toBe(1);
      await busy;
      // Both workers are idle now; without affinity the first in line would make a new instance.
      for (let i = 2; i <= 5; i++) {
        const response = await two.fetch("/fn/sticky/count");
        expect(response.headers.get("x-joule-cold-start")).toBe("false");
        expect((await response.json()).requests).toBe(i);
      }
    } finally {
      await two.close();
    }
  });
});
