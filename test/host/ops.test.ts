import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost();
  expect((await t.deploy("tiny")).status).toBe(201);
  expect((await t.deploy("trap")).status).toBe(201);
});
afterAll(() => t?.close());

describe("operating a host", () => {
  it("answers liveness and readiness", async () => {
    expect(await (await t.fetch("/healthz")).json()).toEqual({ status: "ok" });
    expect(await (await t.fetch("/readyz")).json()).toEqual({ status: "ready" });
  });

  it("exports Prometheus metrics per function and for the pool", async () => {
    for (let i = 0; i < 3; i++) await t.fetch("/fn/tiny/");
    await t.fetch("/fn/trap/");
    const response = await t.fetch("/metrics");
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    expect(text).toContain('joule_invocations_total{function="tiny",status="200"} 3');
    expect(text).toContain('joule_invocation_errors_total{function="trap",code="JOULE_ERR_EXECUTION_TRAP"} 1');
    expect(text).toMatch(/joule_invocation_duration_seconds_count\{function="tiny"\} 3/);
    expect(text).toMatch(/joule_cold_starts_total\{function="tiny",instance="(prepared|new)"\} [12]/);
    expect(text).toMatch(/joule_instances\{function="tiny"\} [12]/);
    expect(text).toMatch(/joule_instance_memory_bytes_count\{function="tiny"\} 3/);
    expect(text).toMatch(/joule_pool_workers 2/);
    expect(text).toMatch(/joule_pool_queue_depth 0/);
    expect(text).toMatch(/joule_pool_utilization_ratio \d/);
  });

  it("logs each request with its id", async () => {
    const response = await t.fetch("/fn/tiny/");
    const id = response.headers.get("x-joule-request-id");
    expect(t.logs.some((l) => l.requestId === id && l.msg === "request completed")).toBe(true);
  });

  it("answers unknown routes with a coded 404", async () => {
    const response = await t.fetch("/nope");
    expect(response.status).toBe(404);
    expect((await response.json()).error.code).toBe("JOULE_ERR_ROUTE_NOT_FOUND");
  });
});
