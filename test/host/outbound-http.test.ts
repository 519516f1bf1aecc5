/**
 * capabilities.outboundHttp through the guest's standard fetch: what a
 * grant allows, and the limits around it. Attacks on the network policy
 * are in hostile-capabilities.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

let t: TestHost;
let up: Upstream;
let other: Upstream;

const FILES = { "/data/": "assets/", "/config.json": "config.json" };

/** Deploys the reach guest; loopback is private, so naming the address in the grant is the explicit allow. */
const deployReach = (name: string, origins: string[], limits: unknown) =>
  t.deploy(name, {
    component: componentPath("reach"),
    functionDir: reachDir(),
    capabilities: { kv: ["cache"], outboundHttp: origins, files: FILES },
    limits,
  });

beforeAll(async () => {
  [t, up, other] = await Promise.all([startTestHost(), startUpstream(), startUpstream()]);
  const response = await deployReach("reach", [up.origin, other.origin], { timeoutMs: 1500 });
  expect(response.status, await response.text()).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await up?.close();
  await other?.close();
});

const via = async (url: string, extra: Record<string, string> = {}) =>
  (await t.fetch(`/fn/reach/fetch?${new URLSearchParams({ url, ...extra })}`)).json();

describe("outbound HTTP", () => {
  it("reaches a granted origin with the standard fetch: method, body and headers go through", async () => {
    const answer = await via(`${up.origin}/echo?x=1`, { method: "POST", body: "ping", auth: "Bearer t" });
    expect(answer).toMatchObject({ ok: true, status: 200, url: `${up.origin}/echo?x=1`, redirected: false });
    const echoed = JSON.parse(answer.body);
    expect(echoed).toMatchObject({ method: "POST", body: "ping" });
    // The host sets Host from the URL and sends nothing of its own.
    expect(echoed.headers).toMatchObject({ host: `127.0.0.1:${up.port}`, authorization: "Bearer t" });
    expect(echoed.headers.cookie).toBeUndefined();
  });

  it("follows a redirect within the grant, and drops credentials when the origin changes", async () => {
    const same = await via(`${up.origin}/redirect?to=/echo`, { auth: "Bearer t" });
    expect(same).toMatchObject({ ok: true, status: 200, url: `${up.origin}/echo`, redirected: true });
    expect(JSON.parse(same.body).headers.authorization).toBe("Bearer t");
    const cross = await via(`${up.origin}/redirect?to=${encodeURIComponent(`${other.origin}/echo`)}`, {
      auth: "Bearer t",
    });
    expect(cross).toMatchObject({ ok: true, url: `${other.origin}/echo`, redirected: true });
    expect(JSON.parse(cross.body).headers.authorization).toBeUndefined();
    // 303 turns a POST into a GET without its body.
    const seeOther = await via(`${up.origin}/redirect?status=303&to=/echo`, { method: "POST", body: "gone" });
    expect(JSON.parse(seeOther.body)).toMatchObject({ method: "GET", body: "" });
  });

  it('returns a redirect as it is with redirect: "manual", and stops a redirect loop', async () => {
    expect(await via(`${up.origin}/redirect?to=/echo`, { redirect: "manual" })).toMatchObject({
      ok: true,
      status: 302,
      redirected: false,
    });
    expect(await via(`${up.origin}/loop`)).toMatchObject({
      ok: false,
      name: "TypeError",
      error: "fetch failed: more than 5 redirects",
    });
  });

  it("bounds response bodies and the requests of one invocation", async () => {
    expect(await via(`${up.origin}/big?bytes=${8 * 1024 * 1024 + 1}`)).toMatchObject({
      ok: false,
      error: `fetch too-large: response bodies are at most ${8 * 1024 * 1024} bytes`,
    });
    expect(await via(`${up.origin}/big?bytes=${1024 * 1024}`)).toMatchObject({ ok: true, body: "1048576 bytes" });
    const many = await (await t.fetch(`/fn/reach/fetch-many?n=40&url=${encodeURIComponent(`${up.origin}/`)}`)).json();
    expect(many).toEqual({
      ok: false,
      done: 32,
      name: "TypeError",
      error: "fetch too-large: an invocation makes at most 32 requests (redirects included)",
    });
    // The count is per invocation: the next one starts afresh.
    expect(await via(`${up.origin}/`)).toMatchObject({ ok: true, body: "hello from upstream" });
  });

  it("takes the function's own limits.outbound, within the manifest's bounds", async () => {
    const deploy = (limits: unknown) => deployReach("reach-limited", [up.origin], limits);
    expect((await deploy({ timeoutMs: 1500, outbound: { requests: 50, responseBytes: 1000 } })).status).toBe(201);
    const limited = async (path: string) => (await t.fetch(`/fn/reach-limited/${path}`)).json();
    expect(await limited(`fetch?url=${encodeURIComponent(`${up.origin}/big?bytes=1001`)}`)).toMatchObject({
      ok: false,
      error: "fetch too-large: response bodies are at most 1000 bytes",
    });
    expect(await limited(`fetch-many?n=40&url=${encodeURIComponent(`${up.origin}/`)}`)).toEqual({ ok: true, done: 40 });
    const refused = await deploy({ outbound: { requests: 5000, bogus: 1 } });
    const answer = await refused.json();
    expect([refused.status, answer.error.code]).toEqual([400, "JOULE_ERR_MANIFEST_INVALID"]);
    expect(answer.error.details.problems.join(" ")).toMatch(/limits\.outbound\.requests.*limits\.outbound/s);
  });

  it("lets init fetch from a granted origin (once at deploy into the snapshot, or per new instance without one), and refuses and audits any other", async () => {
    const initUrl = `${up.origin}/config?from=init`;
    const fetches = () => up.seen.filter((request) => request.url === "/config?from=init").length;
    const deploy = (name: string, extra: Record<string, unknown> = {}) =>
      t.deploy(name, {
        component: componentPath("reach"),
        functionDir: reachDir(),
        capabilities: { kv: ["cache"], outboundHttp: [up.origin], files: FILES },
        env: { INIT_URL: initUrl },
        ...extra,
      });
    const got = { status: 200, body: "hello from upstream" };

    const before = fetches();
    const snapshotted = await deploy("reach-init");
    expect(snapshotted.status, await snapshotted.text()).toBe(201);
    expect(fetches()).toBe(before + 1);
    for (let i = 0; i < 2; i++) expect(await (await t.fetch("/fn/reach-init/from-init")).json()).toEqual(got);
    expect(fetches()).toBe(before + 1);

    const fresh = await deploy("reach-init-fresh", { snapshot: false });
    expect(fresh.status, await fresh.text()).toBe(201);
    expect(fetches()).toBe(before + 1);
    expect(await (await t.fetch("/fn/reach-init-fresh/from-init")).json()).toEqual(got);
    expect(fetches()).toBe(before + 2);

    // An origin outside the grant is refused in init as anywhere, and audited.
    const elsewhere = { env: { INIT_URL: `${other.origin}/config` } };
    const refused = await deploy("reach-init-denied", elsewhere);
    expect(refused.status).toBe(422);
    expect((await refused.json()).error.code).toBe("JOULE_ERR_DEPLOY_INIT_FAILED");
    const failing = await deploy("reach-init-denied-fresh", { ...elsewhere, snapshot: false });
    expect(failing.status, await failing.text()).toBe(201);
    // Per instance, the request that made the instance answers the denial its init did not catch.
    const answered = await t.fetch("/fn/reach-init-denied-fresh/from-init");
    expect(answered.status).toBe(403);
    expect((await answered.json()).error).toMatchObject({
      code: "JOULE_ERR_CAPABILITY_DENIED",
      message: expect.stringContaining("not in capabilities.outboundHttp"),
    });
    expect(other.seen.filter((request) => request.url === "/config")).toEqual([]);
    const denials = async (fn: string) =>
      (await (await t.fetch(`/v1/audit?allowed=false&function=${fn}&action=outboundHttp:fetch`)).json()).records;
    // At deploy the host ran init; per instance, the request that made the instance did.
    expect(await denials("reach-init-denied")).toEqual([
      expect.objectContaining({ principal: "host", reason: expect.stringMatching(/^init at deploy: /) }),
    ]);
    expect(await denials("reach-init-denied-fresh")).toEqual([
      expect.objectContaining({ reason: expect.stringContaining("not in capabilities.outboundHttp") }),
    ]);
  });

  it("ends a call to an upstream that never answers at the invocation's time limit, and keeps serving", async () => {
    const started = Date.now();
    const response = await t.fetch(`/fn/reach/fetch?url=${encodeURIComponent(`${up.origin}/never`)}`);
    expect(response.status).toBe(504);
    expect((await response.json()).error.code).toBe("JOULE_ERR_LIMIT_TIMEOUT");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await via(`${up.origin}/`)).toMatchObject({ ok: true });
  });
});
