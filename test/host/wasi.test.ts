import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ workers: 2 });
  expect((await t.deploy("misbehave")).status).toBe(201);
});
afterAll(() => t?.close());

describe("what the host gives a function (WASI)", () => {
  it("captures stdout, stderr and ctx.log into the host log, tagged with function and request id", async () => {
    const response = await t.fetch("/fn/misbehave/log");
    const requestId = response.headers.get("x-joule-request-id");
    expect(await response.text()).toBe("logged");
    const lines = t.logs.filter((l) => l.requestId === requestId && l.function === "misbehave" && "guest" in l);
    expect(lines.map((l) => [l.guest, l.msg])).toEqual([
      ["stdout", "line on stdout"],
      ["stderr", "line on stderr"],
      ["info", 'line from ctx.log {"n":1}'],
      ["warn", "warning from ctx.warn"],
    ]);
  });

  it("gives a wall clock and a monotonic clock", async () => {
    const before = Date.now();
    const { now, perf } = await (await t.fetch("/fn/misbehave/time")).json();
    expect(now).toBeGreaterThanOrEqual(before - 1000);
    expect(now).toBeLessThanOrEqual(Date.now() + 1000);
    expect(perf).toBeGreaterThanOrEqual(0);
  });

  it("gives secure randomness that differs between instances", async () => {
    // Instances in different workers, and instances recreated after a redeploy, must not share a sequence.
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      expect((await t.deploy("misbehave", { env: { ROUND: String(round) } })).status).toBe(200);
      const bodies = await Promise.all([t.fetch("/fn/misbehave/random"), t.fetch("/fn/misbehave/random")]);
      for (const body of bodies) {
        const { math, crypto } = await body.json();
        expect(crypto).toHaveLength(8);
        seen.add(JSON.stringify(math));
      }
    }
    expect(seen.size).toBe(6);
  });

  it("hands the function its env and nothing of the host's", async () => {
    const { env, hasProcess } = await (await t.fetch("/fn/misbehave/env")).json();
    expect(env).toEqual({ ROUND: "2" });
    expect(hasProcess).toBe(false);
  });

  it("reuses an instance across requests of the same function version, and starts afresh on redeploy", async () => {
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) counts.push((await (await t.fetch("/fn/misbehave/count")).json()).requests);
    expect(Math.max(...counts)).toBeGreaterThan(1);
    expect((await t.deploy("misbehave", { env: { ROUND: "new" } })).status).toBe(200);
    expect((await (await t.fetch("/fn/misbehave/count")).json()).requests).toBe(1);
  });

  it("lets a function set its own status and headers, but not the host's", async () => {
    const response = await t.fetch("/fn/misbehave/status?code=418");
    expect(response.status).toBe(418);
    expect(response.headers.get("set-cookie")).toBe("a=1");
    const own = await t.fetch("/fn/misbehave/host-headers");
    expect(own.headers.get("x-own")).toBe("kept");
    expect(own.headers.get("x-joule-cold-start")).toMatch(/^(true|false)$/);
    expect(Number(own.headers.get("x-joule-fuel"))).toBeGreaterThan(1000);
  });

  it("shows the function the caller's headers, but never the admin credential", async () => {
    const seen = await (await t.fetch("/fn/misbehave/headers", { headers: { "x-trace": "abc" } })).json();
    expect(seen["x-trace"]).toBe("abc");
    expect(seen.authorization).toBeUndefined();
  });

  it("never lets a deleted function's state reach its next deploy", async () => {
    await t.fetch("/fn/misbehave/count");
    const before = (await (await t.fetch("/fn/misbehave/count")).json()).requests;
    expect(before).toBeGreaterThan(0);
    expect((await t.fetch("/v1/functions/misbehave", { method: "DELETE" })).status).toBe(204);
    expect((await t.deploy("misbehave", { env: { ROUND: "new" } })).status).toBe(201);
    const after = await t.fetch("/fn/misbehave/count");
    expect(after.headers.get("x-joule-cold-start")).toBe("true");
    expect((await after.json()).requests).toBe(1);
  });
});
