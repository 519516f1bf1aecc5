/**
 * /metrics passes `promtool check metrics`: the exposition's format and
 * Prometheus's naming rules (no `_total` on gauges, no doubled prefixes
 * such as `joule_process_process_*`). Checked with test/support/promlint.ts,
 * a checker of those rules, and with promtool itself (Debian's `prometheus`
 * package, which the global setup installs: scripts/ensure-test-tools.ts).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";
import { checkExposition } from "../support/promlint.ts";

let t: TestHost;
let exposition: string;

beforeAll(async () => {
  t = await startTestHost();
  expect((await t.deploy("tiny")).status).toBe(201);
  expect((await t.deploy("trap")).status).toBe(201);
  await t.fetch("/fn/tiny/");
  await t.fetch("/fn/trap/");
  exposition = await (await t.fetch("/metrics")).text();
});
afterAll(() => t?.close());

const promtool = spawnSync("promtool", ["--version"]).status === 0;

describe("the /metrics exposition", () => {
  it("follows the format and Prometheus's naming rules", () => {
    expect(checkExposition(exposition)).toEqual([]);
    expect(exposition).toMatch(/^joule_process_cpu_seconds_total \d/m);
    expect(exposition).not.toMatch(/joule_process_process_|joule_process_nodejs_/);
  });

  it.skipIf(!promtool)("passes promtool check metrics", () => {
    // promtool exits non-zero and prints each problem when the lint fails.
    expect(() => execFileSync("promtool", ["check", "metrics"], { input: exposition, stdio: "pipe" })).not.toThrow();
  });

  it("is what the checker catches: a gauge named _total and a counter without it", () => {
    const bad = [
      "# HELP joule_nodejs_active_handles_total Handles",
      "# TYPE joule_nodejs_active_handles_total gauge",
      "joule_nodejs_active_handles_total 3",
      "# HELP joule_requests Requests",
      "# TYPE joule_requests counter",
      "joule_requests 1",
      "# TYPE joule_latency_ms histogram",
      'joule_latency_ms_bucket{le="+Inf"} 1',
    ].join("\n");
    expect(checkExposition(bad)).toEqual([
      'joule_nodejs_active_handles_total: non-counter metrics should not have "_total" suffix',
      'joule_requests: counter metrics should have "_total" suffix',
      "joule_latency_ms: no help text",
      "joule_latency_ms: metric names should not contain abbreviated units",
    ]);
  });
});
