import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ maxLogBytesPerInvocation: 4096 });
  for (const name of ["misbehave", "trap", "spin", "tiny"]) {
    const limits: Record<string, number> = name === "spin" ? { timeoutMs: 300 } : {};
    expect((await t.deploy(name, { limits })).status).toBe(201);
  }
});
afterAll(() => t?.close());

async function expectError(path: string, status: number, code: string): Promise<string> {
  const response = await t.fetch(path);
  expect(response.status).toBe(status);
  const { error } = await response.json();
  expect(error.code).toBe(code);
  return error.message;
}

describe("a function that fails", () => {
  it("answers 502 when the function throws, without host or guest paths, and keeps serving", async () => {
    const message = await expectError("/fn/misbehave/throw", 502, "JOULE_ERR_EXECUTION_FAILED");
    expect(message).toContain("could not read <path>");
    expect(message).not.toMatch(/\/home|\/work|node_modules|\.ts/);
    expect(await (await t.fetch("/fn/tiny/")).text()).toBe("tiny");
  });

  it("says so when fetch's promise never settles, instead of reporting a trap", async () => {
    const message = await expectError("/fn/misbehave/never-settles", 502, "JOULE_ERR_EXECUTION_UNSETTLED");
    expect(message).toMatch(/^fetch\(\) returned a promise that never settles/);
    expect(await (await t.fetch("/fn/misbehave/count")).json()).toEqual({ requests: 1 });
  });

  it("answers 502 when fetch returns something that is not a Response", async () => {
    const message = await expectError("/fn/misbehave/not-a-response", 502, "JOULE_ERR_EXECUTION_FAILED");
    expect(message).toContain("must return a Response");
  });

  it("answers 502 on a trap and discards the instance", async () => {
    for (let i = 0; i < 3; i++) {
      const response = await t.fetch("/fn/trap/");
      expect(response.status).toBe(502);
      // A trapped instance is never reused: every request starts a new one.
      expect(response.headers.get("x-joule-cold-start")).toBe("true");
      const { error } = await response.json();
      expect(error).toEqual({ code: "JOULE_ERR_EXECUTION_TRAP", message: expect.stringContaining("unreachable") });
    }
  });

  it("answers 504 for a function that never returns, replaces the worker, and the others keep being served", async () => {
    const spinning = [t.fetch("/fn/spin/"), t.fetch("/fn/spin/")];
    const others = await Promise.all(Array.from({ length: 6 }, () => t.fetch("/fn/tiny/")));
    for (const response of await Promise.all(spinning)) {
      expect(response.status).toBe(504);
      expect(Number(response.headers.get("x-joule-duration-us"))).toBeGreaterThanOrEqual(300_000);
      expect((await response.json()).error.code).toBe("JOULE_ERR_LIMIT_TIMEOUT");
    }
    for (const response of others) expect(await response.text()).toBe("tiny");
    // Both workers were replaced; the pool serves again.
    expect(await (await t.fetch("/fn/misbehave/count")).json()).toMatchObject({ requests: expect.any(Number) });
  });

  it("refuses a response body over the limit", async () => {
    const small = await startTestHost({ maxBodyBytes: 1024 });
    try {
      expect((await small.deploy("misbehave")).status).toBe(201);
      expect((await small.fetch("/fn/misbehave/big?bytes=1024")).status).toBe(200);
      const response = await small.fetch("/fn/misbehave/big?bytes=1025");
      expect(response.status).toBe(502);
      expect((await response.json()).error.code).toBe("JOULE_ERR_LIMIT_RESPONSE_TOO_LARGE");
    } finally {
      await small.close();
    }
  });

  it("bounds what one invocation may log", async () => {
    const response = await t.fetch("/fn/misbehave/flood");
    expect(await response.text()).toBe("flooded");
    const flood = t.logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("flood line"));
    expect(flood.length).toBeGreaterThan(0);
    expect(flood.reduce((n, l) => n + String(l.msg).length, 0)).toBeLessThanOrEqual(4096);
    expect(t.logs.some((l) => l.msg === "guest log lines dropped: over the per-invocation limit")).toBe(true);
  });
});
