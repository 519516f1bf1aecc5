/**
 * `/v1/keys`: API keys over the admin API. A key hands out and revokes only
 * what it holds itself; a revoked key is refused from its next request on;
 * secrets are shown once and never listed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let manager: string;

beforeAll(async () => {
  t = await startTestHost();
  const deployed = await t.deploy("private", { component: componentPath("tiny") });
  expect(deployed.status).toBe(201);
  manager = t.host.keys.create({
    name: "manager",
    scopes: ["keys:manage", "functions:invoke"],
    functions: ["private"],
  }).key;
});
afterAll(() => t?.close());

const post = (body: unknown, key = t.key) =>
  t.fetch("/v1/keys", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
const revoke = (id: string, key = t.key) =>
  t.fetch(`/v1/keys/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${key}` } });
const code = async (response: Response) => [response.status, (await response.json()).error?.code];

describe("API keys over the admin API", () => {
  it("makes a key that works at once, shows its secret once, and never lists it", async () => {
    const made = await post({ name: "frontend", scopes: ["functions:invoke"], functions: ["private"] });
    expect(made.status).toBe(201);
    const key = await made.json();
    expect(key).toMatchObject({
      name: "frontend",
      scopes: ["functions:invoke"],
      functions: ["private"],
      revoked: false,
    });
    expect(key.key).toMatch(new RegExp(`^jk_${key.id}_`));
    const called = await t.fetch("/fn/private/", { headers: { authorization: `Bearer ${key.key}` } });
    expect(called.status).toBe(200);

    const listed = await t.fetch("/v1/keys");
    const text = await listed.text();
    expect(JSON.parse(text).keys).toContainEqual(expect.objectContaining({ id: key.id, name: "frontend" }));
    // The secret follows jk_<id>_ (and may itself hold underscores).
    expect(text).not.toContain(key.key.slice(`jk_${key.id}_`.length));
    // keys:manage is its own scope: an invoke key cannot list keys.
    expect(await code(await t.fetch("/v1/keys", { headers: { authorization: `Bearer ${key.key}` } }))).toEqual([
      403,
      "JOULE_ERR_PERMISSION_DENIED",
    ]);
  });

  it("revokes a key: refused from its next request on, audited with its id", async () => {
    const { id, key } = await (await post({ scopes: ["functions:invoke"] })).json();
    expect((await t.fetch("/fn/private/", { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect((await revoke(id)).status).toBe(204);
    expect(await code(await t.fetch("/fn/private/", { headers: { authorization: `Bearer ${key}` } }))).toEqual([
      401,
      "JOULE_ERR_REQUEST_UNAUTHORIZED",
    ]);
    expect(await code(await revoke(id))).toEqual([404, "JOULE_ERR_KEY_NOT_FOUND"]);
    expect(await code(await revoke("not-an-id"))).toEqual([404, "JOULE_ERR_KEY_NOT_FOUND"]);
    const audit = await (await t.fetch(`/v1/audit?action=${encodeURIComponent(`DELETE /v1/keys/${id}`)}`)).json();
    expect(audit.records.map((r: { allowed: boolean }) => r.allowed)).toEqual([false, true]);
  });

  it("never hands out or revokes more than the caller holds", async () => {
    // The manager holds keys:manage and functions:invoke for "private" only.
    const escalate = await post({ scopes: ["functions:manage"] }, manager);
    const [status, errorCode] = await code(escalate);
    expect([status, errorCode]).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    expect(await code(await post({ scopes: ["functions:invoke"] }, manager))).toEqual([
      403,
      "JOULE_ERR_PERMISSION_DENIED",
    ]);
    expect(await code(await post({ scopes: ["functions:invoke"], functions: ["private", "other"] }, manager))).toEqual([
      403,
      "JOULE_ERR_PERMISSION_DENIED",
    ]);
    const narrow = await post({ scopes: ["functions:invoke"], functions: ["private"] }, manager);
    expect(narrow.status).toBe(201);
    // It can revoke what it could have made, and not the bootstrap key, which holds every scope.
    expect((await revoke((await narrow.json()).id, manager)).status).toBe(204);
    const bootstrap = (await (await t.fetch("/v1/keys")).json()).keys.find(
      (k: { name: string }) => k.name === "bootstrap",
    );
    expect(await code(await revoke(bootstrap.id, manager))).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    expect((await t.fetch("/v1/functions")).status).toBe(200);
  });

  it("records who made a key, in the key and in the audit log, and lists only keys the caller could revoke", async () => {
    const made = await (await post({ scopes: ["functions:invoke"], functions: ["private"] }, manager)).json();
    const managerId = manager.split("_")[1];
    expect(made.createdBy).toBe(managerId);
    const audit = await (await t.fetch(`/v1/audit?principal=${managerId}`)).json();
    expect(audit.records.map((r: { action: string }) => r.action)).toContain(`POST /v1/keys (made ${made.id})`);
    const seen = (await (await t.fetch("/v1/keys", { headers: { authorization: `Bearer ${manager}` } })).json()).keys;
    expect(seen.map((k: { id: string }) => k.id)).toContain(made.id);
    expect(seen.some((k: { name: string }) => k.name === "bootstrap")).toBe(false);
  });

  it("makes no keys for a key whose energy is budgeted, unless it holds energy:manage", async () => {
    const managerId = manager.split("_")[1];
    const budgeted = await t.fetch(`/v1/energy/principals/${managerId}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ joules: 1 }),
    });
    expect(budgeted.status).toBe(200);
    try {
      const refused = await post({ scopes: ["functions:invoke"], functions: ["private"] }, manager);
      const answer = await refused.json();
      expect([refused.status, answer.error.code]).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
      expect(answer.error.message).toContain("energy:manage");
      // The bootstrap key holds energy:manage: a budget of its own would not stop it.
      expect((await post({ scopes: ["functions:invoke"] })).status).toBe(201);
    } finally {
      await t.fetch(`/v1/energy/principals/${managerId}`, { method: "DELETE" });
    }
    expect((await post({ scopes: ["functions:invoke"], functions: ["private"] }, manager)).status).toBe(201);
  });

  it("refuses a malformed request with what is wrong", async () => {
    for (const body of [
      { scopes: [] },
      { scopes: ["root"] },
      { scopes: ["audit:read"], functions: ["Not A Name"] },
      { scopes: ["audit:read"], extra: true },
    ]) {
      const refused = await post(body);
      const answer = await refused.json();
      expect([refused.status, answer.error.code]).toEqual([400, "JOULE_ERR_REQUEST_INVALID"]);
      expect(answer.error.details.problems.length).toBeGreaterThan(0);
    }
  });
});
