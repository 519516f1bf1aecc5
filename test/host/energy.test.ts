import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_FUEL_PER_SECOND } from "../../host/src/energy/model.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
/** tiny with a fuel limit that makes its reservation easy to reason about. */
const FUEL = 1_000_000_000;
let t: TestHost;
/** One invocation's reservation (fuel limit × joules per fuel), exactly as the host rounds it. */
let reservationJoules: number;

beforeAll(async () => {
  t = await startTestHost({ workers: 2, wattsPerCore: 5 });
  expect((await t.deploy("tiny", { limits: { fuel: FUEL } })).status).toBe(201);
  const { model } = await (await t.fetch("/v1/energy")).json();
  reservationJoules = Math.ceil(FUEL * model.joulesPerFuel * 1e6) / 1e6;
});
afterAll(() => t?.close());

const budget = (scope: string, id: string, body: unknown) =>
  t.fetch(`/v1/energy/${scope}/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const status = async (scope: string, id: string) => (await t.fetch(`/v1/energy/${scope}/${id}`)).json();

describe("energy", () => {
  it("reports the model and the energy of every invocation", async () => {
    const { model } = await (await t.fetch("/v1/energy")).json();
    expect(model).toMatchObject({ source: "default", joulesPerFuel: 5 / DEFAULT_FUEL_PER_SECOND });
    const response = await t.fetch("/fn/tiny/");
    const fuel = Number(response.headers.get("x-joule-fuel"));
    const energy = Number(response.headers.get("x-joule-energy-uj"));
    expect(energy).toBe(Math.ceil(fuel * model.joulesPerFuel * 1e6));
    expect((await t.fetch("/fn/nope/")).headers.get("x-joule-energy-uj")).toBeNull();
  });

  it("refuses before running an invocation whose reservation the budget cannot cover", async () => {
    const before = await status("functions", "tiny");
    // Exactly one reservation: the first call fits; what is left after it is under a
    // reservation, though far more than tiny uses.
    expect((await budget("functions", "tiny", { joules: reservationJoules })).status).toBe(200);
    expect((await t.fetch("/fn/tiny/")).status).toBe(200);
    const refused = await t.fetch("/fn/tiny/");
    expect(refused.status).toBe(429);
    const { error } = await refused.json();
    expect(error.code).toBe("JOULE_ERR_ENERGY_INSUFFICIENT");
    expect(error.details).toMatchObject({ scope: "function", id: "tiny", refillAt: null });
    expect(refused.headers.get("x-joule-fuel")).toBeNull();
    expect(await (await t.fetch("/metrics")).text()).toMatch(
      /joule_invocation_errors_total\{function="tiny",code="JOULE_ERR_ENERGY_INSUFFICIENT"\} [1-9]/,
    );
    const after = await status("functions", "tiny");
    expect(after.invocations).toBe(before.invocations + 1);
    expect(after.usedJoules).toBeLessThan(reservationJoules);
    expect((await t.fetch("/v1/energy/functions/tiny", { method: "DELETE" })).status).toBe(204);
    expect((await t.fetch("/fn/tiny/")).status).toBe(200);
  });

  it("cannot be overspent by concurrent invocations", async () => {
    expect((await t.deploy("misbehave", { limits: { fuel: FUEL } })).status).toBe(201);
    await budget("functions", "misbehave", { joules: reservationJoules * 3 });
    // Each takes ~30 ms, so all twelve arrive while the first are still running.
    const responses = await Promise.all(Array.from({ length: 12 }, () => t.fetch("/fn/misbehave/busy?ms=30")));
    const codes = responses.map((r) => r.status);
    // Three reservations fit; the other nine arrive while they are held and are refused.
    expect(codes.filter((c) => c === 200)).toHaveLength(3);
    expect(codes.filter((c) => c === 429)).toHaveLength(9);
    const after = await status("functions", "misbehave");
    expect(after.usedJoules).toBeLessThanOrEqual(after.budget.joules);
    expect(after.reservedJoules).toBe(0);
  });

  it("keeps budgets and charges across a restart", async () => {
    await budget("functions", "tiny", { joules: 1000, per: "1h" });
    await t.fetch("/fn/tiny/");
    const before = await status("functions", "tiny");
    await t.restart();
    const after = await status("functions", "tiny");
    expect(after).toEqual({ ...before, reservedJoules: 0 });
    expect(after.budget).toEqual({ joules: 1000, periodMs: 3_600_000 });
    expect(Date.parse(after.refillAt)).toBeGreaterThan(Date.now());
  });

  it("commits charges to the data dir while the host runs", async () => {
    await status("functions", "tiny"); // commits whatever earlier tests left pending
    const db = new DatabaseSync(join(t.dataDir, "energy.db"), { readOnly: true });
    try {
      const count = () => (db.prepare("SELECT count(*) AS n FROM charges").get() as { n: number }).n;
      const invocations = () =>
        (
          db.prepare("SELECT invocations FROM totals WHERE scope = 'function' AND id = 'tiny'").get() as {
            invocations: number;
          }
        ).invocations;
      const before = count();
      const invocationsBefore = invocations();
      const energies = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const response = await t.fetch("/fn/tiny/");
          expect(response.status).toBe(200);
          return response.headers.get("x-joule-energy-uj");
        }),
      );
      expect(energies.every((uj) => Number(uj) > 0)).toBe(true);
      // Written behind, without a restart or a read through the API.
      await vi.waitFor(() => expect(count()).toBe(before + 20), { timeout: 2000, interval: 20 });
      expect(invocations()).toBe(invocationsBefore + 20);
    } finally {
      db.close();
    }
  });

  it("keeps charges it could not write and writes them once it can", async () => {
    await status("functions", "tiny");
    const db = new DatabaseSync(join(t.dataDir, "energy.db"));
    try {
      const count = () => (db.prepare("SELECT count(*) AS n FROM charges").get() as { n: number }).n;
      const before = count();
      // SQLite rolls the whole transaction back itself, as after a full disk.
      db.exec("CREATE TRIGGER refuse BEFORE INSERT ON charges BEGIN SELECT RAISE(ROLLBACK, 'no space'); END");
      for (let i = 0; i < 5; i++) expect((await t.fetch("/fn/tiny/")).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(count()).toBe(before);
      const metrics = await (await t.fetch("/metrics")).text();
      expect(metrics).toMatch(/^joule_energy_pending_charges 5$/m);
      // The energy API says why it cannot answer, and loses nothing.
      const refused = await t.fetch("/v1/energy/functions/tiny");
      expect(refused.status).toBe(503);
      expect((await refused.json()).error).toMatchObject({ code: "JOULE_ERR_HOST_NOT_READY" });
      expect((await budget("functions", "other", { joules: 1 })).status).toBe(503);
      // A deploy that sets a budget is refused before anything changes.
      const deployed = await t.deploy("budget-later", {
        component: componentPath("tiny"),
        energyBudget: { joules: 1 },
      });
      expect(deployed.status).toBe(503);
      expect((await t.fetch("/v1/functions/budget-later")).status).toBe(404);
      db.exec("DROP TRIGGER refuse");
      await vi.waitFor(() => expect(count()).toBe(before + 5), { timeout: 8000, interval: 50 });
      expect((await t.fetch("/fn/tiny/")).status).toBe(200);
      await status("functions", "tiny");
      expect(count()).toBe(before + 6);
    } finally {
      db.exec("DROP TRIGGER IF EXISTS refuse");
      db.close();
    }
  });

  it("refills a budget every period", async () => {
    await budget("functions", "tiny", { joules: reservationJoules, per: "1s" });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await t.fetch("/fn/tiny/")).status).toBe(200);
    const refused = await t.fetch("/fn/tiny/");
    expect(refused.status).toBe(429);
    const { refillAt } = (await refused.json()).error.details;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(refillAt) - Date.now()) + 50));
    expect((await t.fetch("/fn/tiny/")).status).toBe(200);
    await t.fetch("/v1/energy/functions/tiny", { method: "DELETE" });
  });

  it("applies a principal's budget, keyed by API key, to its invocations of any function", async () => {
    const keyId = t.key.split("_")[1] as string;
    expect((await budget("principals", keyId, { joules: 0.000001 })).status).toBe(200);
    const refused = await t.fetch("/fn/tiny/");
    expect((await refused.json()).error.details).toMatchObject({ scope: "principal", id: keyId });
    expect((await t.fetch(`/v1/energy/principals/${keyId}`, { method: "DELETE" })).status).toBe(204);
    expect((await t.fetch(`/v1/energy/principals/${keyId}`, { method: "DELETE" })).status).toBe(404);
    expect((await status("principals", keyId)).invocations).toBeGreaterThan(0);
  });

  it("validates budgets, naming the bad field", async () => {
    const bad = await budget("functions", "tiny", { joules: -1, per: "soon" });
    expect(bad.status).toBe(400);
    const { error } = await bad.json();
    expect(error.details.problems).toEqual([expect.stringMatching(/^joules: /), expect.stringMatching(/^per: /)]);
    // A zero period would refill forever; a huge one would not fit the ledger.
    for (const per of ["0s", "1000000w"])
      expect((await budget("functions", "tiny", { joules: 1, per })).status).toBe(400);
    expect((await budget("widgets", "x", { joules: 1 })).status).toBe(404);
  });

  it("sets a function's budget from its deploy config", async () => {
    const response = await t.deploy("budgeted", {
      component: componentPath("tiny"),
      energyBudget: { joules: 42, per: "1d" },
    });
    expect(response.status).toBe(201);
    expect((await status("functions", "budgeted")).budget).toEqual({ joules: 42, periodMs: 86_400_000 });
  });
});

describe("joule calibrate", () => {
  it("measures fuel per second and the host then uses it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "joule-calibrate-"));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [join(ROOT, "host/bin/joule.js"), "calibrate", "--data-dir", dir, "--seconds", "0.3", "--watts", "3", "--json"],
        { cwd: ROOT },
      );
      const result = JSON.parse(stdout);
      expect(result).toMatchObject({ command: "calibrate", wattsPerCore: 3 });
      expect(result.fuelPerSecond).toBeGreaterThan(1e8);
      expect(Math.abs(result.joulesPerFuel * result.fuelPerSecond - 3)).toBeLessThan(1e-6);
      const host = await startTestHost({ wattsPerCore: 3 }, dir);
      try {
        const { model } = await (await host.fetch("/v1/energy")).json();
        expect(model.source).toBe("calibrated");
        expect(model.joulesPerFuel).toBe(3 / result.fuelPerSecond);
      } finally {
        await host.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}.secrets-key`, { force: true }); // made beside the data dir at its first start
    }
  });
});
