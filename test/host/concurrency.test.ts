/**
 * Functions that wait do not hold a thread: a worker runs many invocations
 * at once, each on its own instance, and one that waits (a timer, an
 * upstream) lets the others run. A deadline or a client that goes away ends
 * that invocation only, and nothing an invocation leaves behind runs in the
 * next one.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

let t: TestHost;
let up: Upstream;

const REACH = { files: { "/data/": "assets/", "/config.json": "config.json" }, kv: ["cache"] };

beforeAll(async () => {
  up = await startUpstream();
  t = await startTestHost();
  for (const [name, component] of [
    ["misbehave", "misbehave"],
    ["hello", "hello"],
  ] as const) {
    expect((await t.deploy(name, { component: componentPath(component), public: true })).status).toBe(201);
  }
  const reach = await t.deploy("reach", {
    component: componentPath("reach"),
    functionDir: reachDir(),
    capabilities: { ...REACH, outboundHttp: [up.origin] },
    public: true,
  });
  expect(reach.status, await reach.clone().text()).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await up?.close();
});

const fetchVia = (url: string, init?: RequestInit) =>
  t.anonymous(`/fn/reach/fetch?${new URLSearchParams({ url })}`, init);

describe("many invocations per worker", () => {
  it("runs eight invocations waiting on an upstream at once: the upstream sees all eight together", async () => {
    const before = up.waiting.most;
    expect(before).toBeLessThan(8);
    const answers = await Promise.all(Array.from({ length: 8 }, () => fetchVia(`${up.origin}/wait?ms=1000`)));
    for (const answer of answers) expect(await answer.json()).toMatchObject({ ok: true, body: "waited" });
    expect(up.waiting.most).toBe(8);
  });

  it("answers hello while two anonymous sleepers are still waiting", async () => {
    let settled = 0;
    const sleepers = [1, 2].map(() =>
      t.anonymous("/fn/misbehave/sleep?ms=3000").then(async (response) => {
        settled++;
        return response;
      }),
    );
    // Both sleepers are in flight (their invocations have started) before hello is sent.
    await vi.waitFor(async () => {
      const metrics = await (await t.fetch("/metrics")).text();
      expect(Number(/^joule_pool_in_flight (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    });
    const hello = await t.anonymous("/fn/hello/?name=meanwhile");
    expect(hello.status).toBe(200);
    expect(settled).toBe(0);
    for (const sleeper of await Promise.all(sleepers)) {
      expect(sleeper.status).toBe(200);
      expect((await sleeper.json()).slept).toBeGreaterThanOrEqual(2900);
    }
  });
});

describe("concurrent I/O inside one invocation", () => {
  it("runs Promise.all over fetches at once while its timers keep firing", async () => {
    const most = up.waiting.most;
    up.waiting.most = 0;
    const answer = await (
      await t.anonymous(`/fn/reach/fan-out?${new URLSearchParams({ n: "3", url: `${up.origin}/wait?ms=600` })}`)
    ).json();
    expect(answer).toMatchObject({ ok: true, bodies: ["waited", "waited", "waited"] });
    // The upstream had all three at once; a 20 ms interval ran while they waited.
    expect(up.waiting.most).toBe(3);
    expect(answer.ticks).toBeGreaterThan(5);
    up.waiting.most = Math.max(most, 3);
  });

  it("cancels a fetch with AbortController: the upstream sees the connection closed", async () => {
    const abandoned = up.abandoned;
    const answer = await (
      await t.anonymous(`/fn/reach/abort?${new URLSearchParams({ after: "200", url: `${up.origin}/wait?ms=10000` })}`)
    ).json();
    expect(answer).toMatchObject({ ok: false, name: "AbortError" });
    await vi.waitFor(() => expect(up.abandoned).toBe(abandoned + 1));
  });
});

describe("an invocation past its time limit", () => {
  it("is ended alone: an innocent invocation on the same worker answers, and the worker stays", async () => {
    const one = await startTestHost({ workers: 1 });
    try {
      const slow = { component: componentPath("misbehave"), limits: { timeoutMs: 500 } };
      expect((await one.deploy("slow", slow)).status).toBe(201);
      expect((await one.deploy("innocent", { component: componentPath("misbehave") })).status).toBe(201);
      const warm = await one.fetch("/fn/innocent/count");
      expect(warm.status).toBe(200);
      const timedOut = one.fetch("/fn/slow/sleep?ms=5000");
      const innocent = one.fetch("/fn/innocent/sleep?ms=1000");
      const late = await timedOut;
      expect(late.status).toBe(504);
      expect((await late.json()).error.code).toBe("JOULE_ERR_LIMIT_TIMEOUT");
      const fine = await innocent;
      expect(fine.status).toBe(200);
      // Its worker was not replaced: the innocent function's instance is still warm there.
      const again = await one.fetch("/fn/innocent/count");
      expect(again.headers.get("x-joule-cold-start")).toBe("false");
      const metrics = await (await one.fetch("/metrics")).text();
      expect(metrics).toMatch(/^joule_pool_workers 1$/m);
    } finally {
      await one.close();
    }
  });
});

describe("an invocation that computes", () => {
  it("is stopped at its limit inside the guest, and takes turns with its neighbours on the worker", async () => {
    const one = await startTestHost({ workers: 1 });
    try {
      const busy = { component: componentPath("misbehave"), limits: { timeoutMs: 1500 } };
      expect((await one.deploy("busy", busy)).status).toBe(201);
      expect((await one.deploy("neighbour", { component: componentPath("misbehave") })).status).toBe(201);
      expect((await one.fetch("/fn/neighbour/count")).status).toBe(200);
      let busyDone = false;
      const computing = one.fetch("/fn/busy/busy?ms=5000").then((response) => {
        busyDone = true;
        return response;
      });
      await vi.waitFor(async () => {
        const metrics = await (await one.fetch("/metrics")).text();
        expect(Number(/^joule_pool_in_flight (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      });
      // The worker's one thread is computing, yet the neighbour gets turns.
      const neighbour = await one.fetch("/fn/neighbour/count");
      expect(neighbour.status).toBe(200);
      expect(busyDone).toBe(false);
      const stopped = await computing;
      expect(stopped.status).toBe(504);
      expect((await stopped.json()).error.code).toBe("JOULE_ERR_LIMIT_TIMEOUT");
      // Ended inside the guest: the worker was not replaced, the neighbour's instance is still warm.
      const after = await one.fetch("/fn/neighbour/count");
      expect(after.headers.get("x-joule-cold-start")).toBe("false");
    } finally {
      await one.close();
    }
  });
});

describe("nothing leaks between invocations", () => {
  it("drops an instance that left a timer behind, so the timer never runs or bills later", async () => {
    expect((await t.deploy("leaky", { component: componentPath("misbehave"), public: true })).status).toBe(201);
    expect((await t.anonymous("/fn/leaky/count")).status).toBe(200); // its one instance, now warm
    const leak = await t.anonymous("/fn/leaky/leak");
    expect(leak.headers.get("x-joule-cold-start")).toBe("false");
    const next = await t.anonymous("/fn/leaky/ticks");
    // A fresh instance from the snapshot: the interval is gone with the one that made it.
    expect(next.headers.get("x-joule-cold-start")).toBe("true");
    expect(await next.json()).toEqual({ ticks: -1 });
  });
});

describe("a client that goes away", () => {
  it("cancels the invocation and the request it was waiting on upstream", async () => {
    const abandoned = up.abandoned;
    const controller = new AbortController();
    const pending = fetchVia(`${up.origin}/wait?ms=10000`, { signal: controller.signal }).catch(() => "aborted");
    await vi.waitFor(() => expect(up.waiting.now).toBe(1));
    controller.abort();
    expect(await pending).toBe("aborted");
    await vi.waitFor(() => expect(up.abandoned).toBe(abandoned + 1));
    // The function keeps serving.
    expect((await fetchVia(`${up.origin}/echo`)).status).toBe(200);
  });
});
