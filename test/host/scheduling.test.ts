import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";

/** One worker, so queueing and instance reuse are deterministic. */
let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ workers: 1 });
  expect((await t.deploy("misbehave", { limits: { timeoutMs: 1500 } })).status).toBe(201);
  expect((await t.deploy("spin", { limits: { timeoutMs: 200 } })).status).toBe(201);
  expect((await t.deploy("tiny")).status).toBe(201);
});
afterAll(() => t?.close());

const count = async () => (await (await t.fetch("/fn/misbehave/count")).json()).requests as number;

describe("scheduling invocations on the worker pool", () => {
  it("sends a function's image to a worker once, and a new version's once more", async () => {
    const sent = async () =>
      Number(/^joule_pool_images_sent_total (\d+)$/m.exec(await (await t.fetch("/metrics")).text())?.[1]);
    const before = await count();
    const once = await sent();
    await count();
    await count();
    expect(await sent()).toBe(once); // the one worker holds it: by reference
    // A new version retires the old image on both sides; its first request carries the new one.
    expect((await t.deploy("misbehave", { limits: { timeoutMs: 1500 }, env: { V: "2" } })).status).toBe(200);
    const deployed = await sent();
    await count(); // carries the new image
    expect(await sent()).toBe(deployed + 1);
    await count();
    expect(await sent()).toBe(deployed + 1);
    expect(await count()).toBeGreaterThan(0);
    expect(before).toBeGreaterThan(0);
    expect((await t.fetch("/fn/tiny/")).status).toBe(200);
  });

  it("counts the time limit from when a worker starts the request, not from when it was queued", async () => {
    // Each takes ~600 ms of a 1500 ms limit; the third waits ~1200 ms in the queue first.
    const responses = await Promise.all([1, 2, 3].map(() => t.fetch("/fn/misbehave/busy?ms=600")));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it("serves queued requests first come, first served", async () => {
    const busy = t.fetch("/fn/misbehave/busy?ms=400");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const queued: Array<Promise<number>> = [];
    for (let i = 0; i < 6; i++) {
      queued.push(count());
      await new Promise((resolve) => setTimeout(resolve, 15)); // arrive in this order
    }
    await busy;
    const seen = await Promise.all(queued);
    // Each request's count is the order it ran in: the order they arrived.
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(6);
  });

  it("keeps an instance after the function's own error, and drops it after a trap", async () => {
    const first = await count();
    expect((await t.fetch("/fn/misbehave/throw")).status).toBe(502);
    expect(await count()).toBe(first + 2);
  });

  it("replaces a worker past its limit and reports only live instances", async () => {
    await count();
    const started = performance.now();
    const response = await t.fetch("/fn/spin/");
    expect(response.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(5000);
    // The replacement worker starts cold and serves.
    const after = await t.fetch("/fn/misbehave/count");
    expect(after.headers.get("x-joule-cold-start")).toBe("true");
    expect(await (await t.fetch("/fn/tiny/")).text()).toBe("tiny");
    const metrics = await (await t.fetch("/metrics")).text();
    const total = [...metrics.matchAll(/^joule_instances\{function="[^"]+"\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(total).toBe(2); // misbehave and tiny, in the one live worker
  });
});
