/**
 * `/v1/secrets`: setting a secret over the admin API reaches the function
 * that references it; values never come back; a key limited to some
 * functions sees, sets and deletes only secrets of those functions, and
 * cannot take a name another tenant's secret holds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

const VALUE = "api-set-value-that-must-not-leak";
let t: TestHost;
let tenant: string;

const put = (name: string, body: unknown, key = t.key) =>
  t.fetch(`/v1/secrets/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
const code = async (response: Response) => [response.status, (await response.json()).error?.code];

beforeAll(async () => {
  t = await startTestHost();
  tenant = t.host.keys.create({ name: "tenant", scopes: ["secrets:manage"], functions: ["mine"] }).key;
});
afterAll(() => t?.close());

describe("/v1/secrets", () => {
  it("sets a secret a deploy then references, and never answers with its value", async () => {
    expect((await put("token", { value: VALUE, functions: ["vault"] })).status).toBe(201);
    expect((await put("token", { value: `${VALUE}-2` })).status).toBe(200);
    const deployed = await t.deploy("vault", {
      component: componentPath("misbehave"),
      env: { TOKEN: "secret://token" },
    });
    expect(deployed.status).toBe(201);
    expect((await (await t.fetch("/fn/vault/env")).json()).env).toEqual({ TOKEN: `${VALUE}-2` });
    const listed = await (await t.fetch("/v1/secrets")).text();
    expect(JSON.parse(listed).secrets).toEqual([
      { name: "token", functions: ["vault"], updatedAt: expect.any(String) },
    ]);
    expect(listed).not.toContain(VALUE);
    const audit = await (await t.fetch("/v1/audit?action=PUT%20/v1/secrets/token")).text();
    expect(JSON.parse(audit).records.length).toBe(2);
    expect(audit).not.toContain(VALUE);
  });

  it("refuses a new secret without functions, and a bad name, naming what is wrong", async () => {
    expect(await code(await put("fresh", { value: "v" }))).toEqual([400, "JOULE_ERR_REQUEST_INVALID"]);
    expect(await code(await put("no%20spaces", { value: "v", functions: "*" }))).toEqual([
      400,
      "JOULE_ERR_REQUEST_INVALID",
    ]);
  });

  it("keeps a key limited to functions within them", async () => {
    expect((await put("mine-key", { value: "v", functions: ["mine"] }, tenant)).status).toBe(201);
    expect(await code(await put("everyone", { value: "v", functions: "*" }, tenant))).toEqual([
      403,
      "JOULE_ERR_PERMISSION_DENIED",
    ]);
    expect(await code(await put("other", { value: "v", functions: ["mine", "vault"] }, tenant))).toEqual([
      403,
      "JOULE_ERR_PERMISSION_DENIED",
    ]);
    // A name another tenant's secret holds cannot be overwritten or deleted, and does not show.
    expect(await code(await put("token", { value: "stolen" }, tenant))).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    const as = { headers: { authorization: `Bearer ${tenant}` } };
    expect(await code(await t.fetch("/v1/secrets/token", { method: "DELETE", ...as }))).toEqual([
      404,
      "JOULE_ERR_SECRET_NOT_FOUND",
    ]);
    const seen = (await (await t.fetch("/v1/secrets", as)).json()).secrets.map((s: { name: string }) => s.name);
    expect(seen).toEqual(["mine-key"]);
    expect((await t.fetch("/v1/secrets/mine-key", { method: "DELETE", ...as })).status).toBe(204);
    expect((await (await t.fetch("/fn/vault/env")).json()).env.TOKEN).toBe(`${VALUE}-2`);
  });
});
