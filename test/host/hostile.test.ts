/**
 * Hostile guests (test/fixtures/wat/hostile): each is contained within its
 * limit with a coded error, and the host keeps serving the others.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

const LIMITS = { fuel: 100_000_000, memoryMb: 16, timeoutMs: 5000 };
let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ workers: 2 });
  expect((await t.deploy("tiny")).status).toBe(201);
});
afterAll(() => t?.close());

async function deployHostile(name: string): Promise<void> {
  const response = await t.deploy(name, { component: componentPathOf(name), limits: LIMITS });
  expect(response.status, await response.clone().text()).toBe(201);
}

function componentPathOf(name: string): string {
  return componentPath(`hostile-${name}`);
}

async function invoke(name: string) {
  const started = performance.now();
  const response = await t.fetch(`/fn/${name}/`);
  const ms = performance.now() - started;
  const body = await response.text();
  return { status: response.status, body, json: () => JSON.parse(body), headers: response.headers, ms };
}

async function stillServing(): Promise<void> {
  expect(await (await t.fetch("/fn/tiny/")).text()).toBe("tiny");
}

describe("hostile guests are contained", () => {
  it.each(["infinite-loop", "loop-with-calls"])("%s runs out of fuel, well before its time limit", async (name) => {
    await deployHostile(name);
    const r = await invoke(name);
    expect(r.status).toBe(503);
    expect(r.json().error.code).toBe("JOULE_ERR_LIMIT_FUEL");
    expect(Number(r.headers.get("x-joule-fuel"))).toBeGreaterThanOrEqual(LIMITS.fuel);
    expect(Number(r.headers.get("x-joule-fuel"))).toBeLessThan(LIMITS.fuel * 1.01);
    expect(r.ms).toBeLessThan(LIMITS.timeoutMs);
    await stillServing();
  });

  it.each(["memory-bomb", "memory-bomb-4gib"])("%s is refused memory past limits.memoryMb", async (name) => {
    await deployHostile(name);
    const before = process.memoryUsage().rss;
    const r = await invoke(name);
    expect(r.status).toBe(503);
    expect(r.json().error.code).toBe("JOULE_ERR_LIMIT_MEMORY");
    expect(r.json().error.message).toMatch(/limits\.memoryMb/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
    await stillServing();
  });

  it("table-bomb is refused table growth past the host's bound, and traps", async () => {
    await deployHostile("table-bomb");
    const r = await invoke("table-bomb");
    expect(r.status).toBe(502);
    expect(r.json().error.code).toBe("JOULE_ERR_EXECUTION_TRAP");
    await stillServing();
  });

  it("out-of-bounds traps, and the instance is dropped", async () => {
    await deployHostile("out-of-bounds");
    for (let i = 0; i < 2; i++) {
      const r = await invoke("out-of-bounds");
      expect(r.status).toBe(502);
      expect(r.json().error).toMatchObject({
        code: "JOULE_ERR_EXECUTION_TRAP",
        message: expect.stringContaining("out of bounds"),
      });
      expect(r.headers.get("x-joule-cold-start")).toBe("true");
    }
    await stillServing();
  });

  it("recursion-bomb hits the stack limit and traps", async () => {
    await deployHostile("recursion-bomb");
    const r = await invoke("recursion-bomb");
    expect(r.status).toBe(502);
    expect(r.json().error).toMatchObject({
      code: "JOULE_ERR_EXECUTION_TRAP",
      message: expect.stringMatching(/stack/i),
    });
    await stillServing();
  });

  it("huge-data, which starts with 2 GiB of memory, is refused at deploy", async () => {
    const response = await t.deploy("huge-data", { component: componentPathOf("huge-data"), limits: LIMITS });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.code).toBe("JOULE_ERR_MANIFEST_INVALID");
    expect(error.details.problems).toEqual(["limits.memoryMb: at least 2048"]);
    expect((await t.fetch("/v1/functions/huge-data")).status).toBe(404);
  });

  it("nested-blocks, 1000 deep, is metered and runs", async () => {
    await deployHostile("nested-blocks");
    const r = await invoke("nested-blocks");
    expect(r.status).toBe(200);
    expect(r.body).toBe("deep");
    // Entering a block does no work, so it costs no fuel (costs.ts): 1000 of them, a few units.
    expect(Number(r.headers.get("x-joule-fuel"))).toBeGreaterThan(0);
    expect(Number(r.headers.get("x-joule-fuel"))).toBeLessThan(100);
  });

  it("busy-start, a start function that never returns, runs out of the request's fuel and is billed", async () => {
    await deployHostile("busy-start");
    const r = await invoke("busy-start");
    expect(r.status).toBe(503);
    expect(r.json().error.code).toBe("JOULE_ERR_LIMIT_FUEL");
    expect(Number(r.headers.get("x-joule-fuel"))).toBeGreaterThanOrEqual(LIMITS.fuel);
    expect(Number(r.headers.get("x-joule-energy-uj"))).toBeGreaterThan(0);
    expect(r.ms).toBeLessThan(LIMITS.timeoutMs);
    await stillServing();
  });

  it("start-memory-bomb is held to limits.memoryMb while instantiating", async () => {
    await deployHostile("start-memory-bomb");
    const before = process.memoryUsage().rss;
    const r = await invoke("start-memory-bomb");
    expect(r.status).toBe(503);
    expect(r.json().error.code).toBe("JOULE_ERR_LIMIT_MEMORY");
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
    await stillServing();
  });

  it("fuel-mint, a negative 64-bit grow operand, cannot create fuel", async () => {
    await deployHostile("fuel-mint");
    const r = await invoke("fuel-mint");
    expect(r.status).toBe(503);
    expect(r.json().error.code).toBe("JOULE_ERR_LIMIT_FUEL");
    expect(Number(r.headers.get("x-joule-fuel"))).toBeGreaterThanOrEqual(LIMITS.fuel);
    expect(Number(r.headers.get("x-joule-energy-uj"))).toBeGreaterThan(0);
    await stillServing();
  });
});
