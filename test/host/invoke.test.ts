import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost();
  const env: Record<string, Record<string, string>> = {
    hello: { GREETING: "Howdy" },
    "json-api": { API_VERSION: "1" },
  };
  for (const name of ["hello", "json-api", "echo"])
    expect((await t.deploy(name, { env: env[name] ?? {} })).status).toBe(201);
});
afterAll(() => t?.close());

describe("invoking a function over HTTP", () => {
  it("hands the function the rest of the path, the query and its env, and reports cold and warm starts", async () => {
    const first = await t.fetch("/fn/hello/some/where?name=Ada");
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toContain("application/json");
    expect(await first.json()).toEqual({ greeting: "Howdy, Ada!", path: "/some/where" });
    expect(first.headers.get("x-joule-cold-start")).toBe("true");
    expect(Number(first.headers.get("x-joule-duration-us"))).toBeGreaterThan(0);

    // With two workers, the second and third requests may each land on a fresh worker; the third
    // request to the same worker must be warm. Send enough that both workers are warm.
    const later = [];
    for (let i = 0; i < 6; i++) later.push((await t.fetch("/fn/hello/")).headers.get("x-joule-cold-start"));
    expect(later.slice(-2)).toEqual(["false", "false"]);
  });

  it("reaches the function root with and without a trailing slash", async () => {
    for (const path of ["/fn/hello", "/fn/hello/"]) {
      expect(await (await t.fetch(path)).json()).toMatchObject({ path: "/" });
    }
  });

  it("routes every method, with JSON bodies and status codes chosen by the function", async () => {
    const sum = await t.fetch("/fn/json-api/sum", { method: "POST", body: JSON.stringify({ numbers: [1, 2, 3.5] }) });
    expect(sum.status).toBe(200);
    expect(await sum.json()).toEqual({ count: 3, sum: 6.5 });
    expect(sum.headers.get("x-api-version")).toBe("1");

    const bad = await t.fetch("/fn/json-api/sum", { method: "POST", body: "not json" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "body must be JSON" });

    const wrongMethod = await t.fetch("/fn/json-api/sum", { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");

    expect((await t.fetch("/fn/json-api/nowhere")).status).toBe(404);
    expect(await (await t.fetch("/fn/json-api/greet/J%C3%BCrgen")).json()).toEqual({ hello: "Jürgen" });

    const words = await t.fetch("/fn/json-api/words", { method: "PUT", body: "a b" });
    expect(words.status).toBe(405);
  });

  it("round-trips binary bodies byte for byte, up to the limit", async () => {
    for (const size of [0, 1, 65_537, 6 * 1024 * 1024]) {
      const body = randomBytes(size);
      const response = await t.fetch("/fn/echo/", {
        method: "POST",
        body,
        headers: { "content-type": "application/octet-stream" },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-echo-bytes")).toBe(String(size));
      expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
    }
  });

  it("hands the function the path as sent, without decoding it", async () => {
    expect(await (await t.fetch("/fn/hello/a%3Fname=evil")).json()).toEqual({
      greeting: "Howdy, world!",
      path: "/a%3Fname=evil",
    });
    expect(await (await t.fetch("/fn/hello/x%2Fy/z?name=q%26r")).json()).toEqual({
      greeting: "Howdy, q&r!",
      path: "/x%2Fy/z",
    });
  });

  it("passes the request's headers through, without the admin credential", async () => {
    const response = await t.fetch("/fn/echo/", {
      method: "PATCH",
      body: "x",
      headers: { "content-type": "text/x-custom" },
    });
    expect(response.headers.get("x-echo-method")).toBe("PATCH");
    expect(response.headers.get("content-type")).toBe("text/x-custom");
  });

  it("refuses a body over the limit with 413 and keeps serving", async () => {
    const response = await t.fetch("/fn/echo/", { method: "POST", body: new Uint8Array(6 * 1024 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect((await response.json()).error.code).toBe("JOULE_ERR_BODY_TOO_LARGE");
    expect((await t.fetch("/fn/hello/")).status).toBe(200);
    const metrics = await (await t.fetch("/metrics")).text();
    expect(metrics).toContain('joule_invocation_errors_total{function="echo",code="JOULE_ERR_BODY_TOO_LARGE"} 1');
  });

  it("answers 404 with a coded error for an unknown function", async () => {
    const response = await t.fetch("/fn/missing/anything");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: {
        code: "JOULE_ERR_FUNCTION_NOT_FOUND",
        message: 'no function named "missing" is deployed',
        details: { function: "missing" },
      },
    });
  });

  it("serves requests concurrently across workers", async () => {
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => t.fetch(`/fn/hello/?name=n${i}`)));
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(bodies.map((b) => b.greeting)).toEqual(Array.from({ length: 40 }, (_, i) => `Howdy, n${i}!`));
  });
});
