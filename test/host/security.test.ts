import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let invokeTiny: string;
let manageOnly: string;
let auditor: string;

beforeAll(async () => {
  t = await startTestHost();
  const deploy = (name: string, isPublic: boolean) =>
    t.deploy(name, { component: componentPath("tiny"), public: isPublic });
  expect((await deploy("private", false)).status).toBe(201);
  expect((await deploy("other", false)).status).toBe(201);
  expect((await deploy("open", true)).status).toBe(201);
  invokeTiny = t.host.keys.create({ name: "invoker", scopes: ["functions:invoke"], functions: ["private"] }).key;
  manageOnly = t.host.keys.create({ name: "deployer", scopes: ["functions:manage"] }).key;
  auditor = t.host.keys.create({ name: "auditor", scopes: ["audit:read"] }).key;
});
afterAll(() => t?.close());

const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const code = async (response: Response) => [response.status, (await response.json()).error?.code];

describe("API keys and scopes", () => {
  it("answers 401 without a key or with a bad one, on the admin API and private functions", async () => {
    expect(await code(await t.anonymous("/v1/functions"))).toEqual([401, "JOULE_ERR_REQUEST_UNAUTHORIZED"]);
    expect(await code(await t.anonymous("/fn/private/"))).toEqual([401, "JOULE_ERR_REQUEST_UNAUTHORIZED"]);
    for (const bad of [
      "nonsense",
      `${t.key}x`,
      t.key.replace(/.$/, (c) => (c === "A" ? "B" : "A")),
      `jk_0000000000000000_${"a".repeat(43)}`,
    ]) {
      expect(await code(await t.fetch("/v1/functions", as(bad)))).toEqual([401, "JOULE_ERR_REQUEST_UNAUTHORIZED"]);
    }
  });

  it("answers 403 for a key without the route's scope", async () => {
    expect(await code(await t.fetch("/v1/functions", as(invokeTiny)))).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    expect(await code(await t.fetch("/v1/energy", as(manageOnly)))).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    expect(await code(await t.fetch("/fn/private/", as(manageOnly)))).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    expect((await t.fetch("/v1/functions", as(manageOnly))).status).toBe(200);
  });

  it("limits an invoke key to its named functions", async () => {
    expect(await (await t.fetch("/fn/private/", as(invokeTiny))).text()).toBe("tiny");
    expect(await code(await t.fetch("/fn/other/", as(invokeTiny)))).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
  });

  it("lets anyone invoke a public function, leaves its Authorization to it, but refuses a bad Joule key there", async () => {
    expect(await (await t.anonymous("/fn/open/")).text()).toBe("tiny");
    expect(await (await t.fetch("/fn/open/", as("jk_bad"))).text()).toBe("tiny");
    const named = await t.anonymous("/fn/open/", { headers: { "x-joule-authorization": "Bearer jk_bad" } });
    expect(named.status).toBe(401);
  });

  it("stops accepting a revoked key", async () => {
    const { key, info } = t.host.keys.create({ name: "short-lived", scopes: ["functions:manage"] });
    expect((await t.fetch("/v1/functions", as(key))).status).toBe(200);
    expect(t.host.keys.revoke(info.id)).toBe(true);
    expect((await t.fetch("/v1/functions", as(key))).status).toBe(401);
  });

  it("never writes a key's secret to the log", () => {
    const secret = t.key.split("_").slice(2).join("_");
    expect(JSON.stringify(t.logs)).not.toContain(secret);
  });
});

describe("the audit log", () => {
  it("records admin operations and denials, queryable with filters", async () => {
    await t.fetch("/v1/functions/other", { method: "DELETE" });
    await t.fetch("/fn/private/", as(manageOnly));
    const { records } = await (await t.fetch("/v1/audit?limit=50", as(auditor))).json();
    const bootstrapId = t.key.split("_")[1];
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          principal: bootstrapId,
          action: "DELETE /v1/functions/:name",
          function: "other",
          allowed: true,
        }),
        expect.objectContaining({
          action: "invoke private",
          function: "private",
          allowed: false,
          reason: "key lacks the functions:invoke scope",
        }),
        expect.objectContaining({
          principal: "anonymous",
          action: "GET /v1/functions",
          allowed: false,
          reason: "no credentials",
        }),
      ]),
    );
    const denied = await (await t.fetch("/v1/audit?allowed=false&function=other", as(auditor))).json();
    expect(
      denied.records.every((r: { allowed: boolean; function: string }) => !r.allowed && r.function === "other"),
    ).toBe(true);
    expect(denied.records.length).toBeGreaterThan(0);
    expect(await code(await t.fetch("/v1/audit?limit=0", as(auditor)))).toEqual([400, "JOULE_ERR_REQUEST_INVALID"]);
  });

  it("is append-only", () => {
    const db = new DatabaseSync(join(t.dataDir, "auth.db"));
    try {
      expect(() => db.exec("UPDATE audit SET allowed = 1")).toThrow(/append-only/);
      expect(() => db.exec("DELETE FROM audit")).toThrow(/append-only/);
    } finally {
      db.close();
    }
  });
});

describe("failed attempts", () => {
  it("are rate-limited per address, and the refusal is audited", async () => {
    let last = 0;
    for (let i = 0; i < 25; i++) last = (await t.fetch("/v1/functions", as("jk_wrong"))).status;
    expect(last).toBe(429);
    // Even the right key waits out the window from this address.
    expect((await t.fetch("/v1/functions")).status).toBe(429);
    const { records } = await (await t.anonymous("/v1/audit?limit=5", as(auditor)))
      .json()
      .catch(() => ({ records: [] }));
    void records;
  });
});

describe("HTTP hardening", () => {
  it("sends security headers on the admin API", async () => {
    const host = await startTestHost();
    try {
      const response = await host.fetch("/v1/functions");
      expect(
        Object.fromEntries(
          ["x-content-type-options", "x-frame-options", "cache-control"].map((h) => [h, response.headers.get(h)]),
        ),
      ).toEqual({
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "cache-control": "no-store",
      });
      expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
    } finally {
      await host.close();
    }
  });

  it("refuses oversized request headers with 431 and keeps serving", async () => {
    const host = await startTestHost();
    try {
      const response = await host.fetch("/healthz", { headers: { "x-big": "x".repeat(20_000) } });
      expect(response.status).toBe(431);
      expect((await host.fetch("/healthz")).status).toBe(200);
    } finally {
      await host.close();
    }
  });
});

describe("audit flooding", () => {
  it("records at most 60 denials a minute per address, then one summary", async () => {
    const host = await startTestHost();
    try {
      for (let i = 0; i < 100; i++) expect((await host.anonymous("/v1/functions")).status).toBe(401);
      const db = new DatabaseSync(join(host.dataDir, "auth.db"));
      try {
        // Denials are written behind, in batches (auth/audit.ts).
        const rows = await eventually(() => {
          const rows = db.prepare("SELECT reason FROM audit WHERE allowed = 0").all() as Array<{ reason: string }>;
          expect(rows).toHaveLength(61);
          return rows;
        });
        expect(rows.at(-1)?.reason).toMatch(/further denials from this address are not recorded until/);
      } finally {
        db.close();
      }
    } finally {
      await host.close();
    }
  });
});
