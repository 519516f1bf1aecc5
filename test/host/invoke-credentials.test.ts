/**
 * A function's Authorization header is its own: a public function sees the
 * caller's untouched (its own Bearer or Basic auth, a webhook's signature),
 * a private one never sees the Joule key it was called with, and a caller
 * who sends Joule's key in `x-joule-authorization` is charged as itself
 * while the function gets its `Authorization` (README, "Invoking").
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let invoker: { key: string; id: string };

const code = async (response: Response) => [response.status, (await response.json()).error?.code];
const seen = async (response: Response) => {
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, string>;
};
const invocations = async (id: string) =>
  ((await (await t.fetch(`/v1/energy/principals/${id}`)).json()) as { invocations: number }).invocations;

beforeAll(async () => {
  t = await startTestHost();
  const misbehave = componentPath("misbehave");
  expect((await t.deploy("open", { component: misbehave, public: true })).status).toBe(201);
  expect((await t.deploy("closed", { component: misbehave })).status).toBe(201);
  const made = t.host.keys.create({ name: "invoker", scopes: ["functions:invoke"] });
  invoker = { key: made.key, id: made.info.id };
});
afterAll(() => t?.close());

describe("a public function", () => {
  it("sees the caller's Authorization untouched, whatever it holds, and runs", async () => {
    for (const authorization of ["Bearer not-a-joule-key", `Bearer ${invoker.key}`, "Basic dXNlcjpwYXNz"]) {
      const headers = await seen(await t.anonymous("/fn/open/headers", { headers: { authorization } }));
      expect(headers.authorization).toBe(authorization);
    }
  });

  it("charges a caller who sends its key in x-joule-authorization as itself, and hides that header", async () => {
    const before = await invocations(invoker.id);
    const headers = await seen(
      await t.anonymous("/fn/open/headers", {
        headers: { "x-joule-authorization": `Bearer ${invoker.key}`, authorization: "Bearer the-function-s-own" },
      }),
    );
    expect(headers["x-joule-authorization"]).toBeUndefined();
    expect(headers.authorization).toBe("Bearer the-function-s-own");
    expect(await invocations(invoker.id)).toBe(before + 1);
  });

  it("refuses a bad key in x-joule-authorization: a caller who names who pays must be that", async () => {
    const refused = await t.anonymous("/fn/open/headers", { headers: { "x-joule-authorization": "Bearer jk_bad" } });
    expect(await code(refused)).toEqual([401, "JOULE_ERR_REQUEST_UNAUTHORIZED"]);
  });
});

describe("a private function", () => {
  it("never sees the Joule key it was called with in Authorization", async () => {
    const headers = await seen(
      await t.anonymous("/fn/closed/headers", { headers: { authorization: `Bearer ${invoker.key}` } }),
    );
    expect(headers.authorization).toBeUndefined();
    expect(JSON.stringify(headers)).not.toContain(invoker.key);
  });

  it("gets the caller's own Authorization when Joule's key came in x-joule-authorization", async () => {
    const headers = await seen(
      await t.anonymous("/fn/closed/headers", {
        headers: { "x-joule-authorization": `Bearer ${invoker.key}`, authorization: "Basic dXNlcjpwYXNz" },
      }),
    );
    expect(headers.authorization).toBe("Basic dXNlcjpwYXNz");
    expect(JSON.stringify(headers)).not.toContain(invoker.key);
  });

  it("refuses a caller whose only Authorization is not a Joule key, saying where the key goes", async () => {
    const refused = await t.anonymous("/fn/closed/headers", { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    expect(refused.status).toBe(401);
    expect((await refused.json()).error.message).toContain("x-joule-authorization");
    expect(await code(await t.anonymous("/fn/closed/headers"))).toEqual([401, "JOULE_ERR_REQUEST_UNAUTHORIZED"]);
  });
});

describe("the admin API", () => {
  it("takes Joule's key in x-joule-authorization too", async () => {
    const listed = await t.anonymous("/v1/functions", { headers: { "x-joule-authorization": `Bearer ${t.key}` } });
    expect(listed.status).toBe(200);
  });
});
