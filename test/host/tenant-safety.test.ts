/**
 * What a tenant holding a deploy key (or nothing) tried against the admin
 * API, each attempt as it was made, each refused now: names from URLs that
 * reach the filesystem, a limited key reaching other functions, another
 * function's kv store granted through a deploy, public functions as a way
 * around a budget, /metrics naming everyone's functions, malformed bodies
 * and Host headers answered as host errors. A second function keeps
 * answering through all of it.
 */

import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let parent: string;

const REACH_GRANTS = { outboundHttp: ["http://127.0.0.1:9"], files: { "/config.json": "config.json" } };
const as = (key: string, init: RequestInit = {}) => ({
  ...init,
  headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` },
});
const code = async (response: Response) => [response.status, (await response.json()).error?.code];
const bystander = async () => expect(await (await t.anonymous("/fn/bystander/")).text()).toBe("tiny");

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "joule-tenant-"));
  t = await startTestHost({}, join(parent, "data"));
  for (const name of ["bystander", "hello"]) {
    expect((await t.deploy(name, { component: componentPath("tiny"), public: true })).status).toBe(201);
  }
});
afterAll(async () => {
  await t?.close();
  await rm(parent, { recursive: true, force: true });
});

describe("names from URLs", () => {
  it("never reach the filesystem: traversal in a name is refused before anything is touched", async () => {
    const planted = join(parent, "something.json");
    await writeFile(planted, "{}");
    for (const path of [
      "/v1/functions/..%2F..%2Fsomething",
      "/v1/functions/..%2Ffunctions%2Fhello",
      "/v1/functions/%2E%2E%2F%2E%2E%2Fsomething",
      "/v1/energy/functions/..%2F..%2Fsomething",
    ]) {
      const response = await t.fetch(path, { method: "DELETE" });
      expect(await code(response), path).toEqual([400, "JOULE_ERR_REQUEST_INVALID"]);
    }
    for (const path of [
      "/v1/functions/..%2Ffunctions%2Fhello",
      "/fn/..%2Ffunctions%2Fhello/",
      "/v2/functions/..%2Fhello/manifests/latest",
    ]) {
      expect((await t.fetch(path)).status, path).toBe(400);
    }
    expect(await stat(planted)).toBeTruthy();
    expect((await t.fetch("/v1/functions/hello")).status).toBe(200);
    await bystander();
  });
});

describe("a key limited to some functions", () => {
  it("deletes, deploys and reads the artifacts of those and no others", async () => {
    const { key } = t.host.keys.create({
      name: "tenant",
      scopes: ["functions:manage", "artifacts:manage"],
      functions: ["hello"],
    });
    expect(await code(await t.fetch("/v1/functions/bystander", as(key, { method: "DELETE" })))).toEqual([
      403,
      "JOULE_ERR_PERMISSION_DENIED",
    ]);
    expect((await t.deploy("elsewhere", { component: componentPath("tiny"), key })).status).toBe(403);
    expect((await t.fetch("/v2/functions/bystander/manifests/latest", as(key))).status).toBe(403);
    expect((await t.fetch("/v2/functions/hello/manifests/latest", as(key))).status).toBe(200);
    const listed = await (await t.fetch("/v1/functions", as(key))).json();
    expect(listed.functions.map((f: { name: string }) => f.name)).toEqual(["hello"]);
    expect((await t.deploy("hello", { component: componentPath("tiny"), key, env: { V: "2" } })).status).toBe(200);
    expect((await t.fetch("/v1/functions/elsewhere")).status).toBe(404);
    await bystander();
  });

  it("cannot grant its function another function's kv store, even one whose function is gone", async () => {
    const deployReach = (name: string, kv: string[], key?: string) =>
      t.deploy(name, {
        component: componentPath("reach"),
        functionDir: reachDir(),
        capabilities: { ...REACH_GRANTS, kv },
        ...(key ? { key } : {}),
      });
    expect((await deployReach("ledger", ["orders"])).status).toBe(201);
    const written = await (await t.fetch("/fn/ledger/kv?op=set&store=orders&key=card&value=4111")).json();
    expect(written).toEqual({ ok: true });
    expect((await t.fetch("/v1/functions/ledger", { method: "DELETE" })).status).toBe(204);

    const { key } = t.host.keys.create({ name: "thief", scopes: ["functions:manage"], functions: ["mine"] });
    const stolen = await deployReach("mine", ["orders"], key);
    expect(stolen.status).toBe(403);
    expect((await stolen.json()).error.message).toContain('"orders"');
    // Its own store is fine, and is then its own.
    expect((await deployReach("mine", ["mine-orders"], key)).status).toBe(201);
    const read = await (await t.fetch("/fn/mine/kv?op=get&store=orders&key=card")).json();
    expect(read.ok).toBe(false);
  });
});

describe("a deploy", () => {
  it("cannot lift a function's budget without energy:manage", async () => {
    const { key } = t.host.keys.create({ name: "lifter", scopes: ["functions:manage"], functions: ["budgeted"] });
    expect((await t.deploy("budgeted", { component: componentPath("tiny"), energyBudget: { joules: 1 } })).status).toBe(
      201,
    );
    const lifted = await t.deploy("budgeted", {
      component: componentPath("tiny"),
      energyBudget: { joules: 1_000_000 },
      key,
    });
    expect(await code(lifted)).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
    expect((await (await t.fetch("/v1/energy/functions/budgeted")).json()).budget.joules).toBe(1);
    // Without a budget in it, the same key's deploy goes through and leaves the budget alone.
    expect((await t.deploy("budgeted", { component: componentPath("tiny"), env: { V: "2" }, key })).status).toBe(200);
    expect((await (await t.fetch("/v1/energy/functions/budgeted")).json()).budget.joules).toBe(1);
  });
});

describe("who pays", () => {
  it("charges anonymous calls of a public function to the principal that deployed it", async () => {
    const made = t.host.keys.create({ name: "owner", scopes: ["functions:manage"], functions: ["free-lunch"] });
    const deployed = await t.deploy("free-lunch", {
      component: componentPath("tiny"),
      public: true,
      limits: { fuel: 1_000_000 },
      key: made.key,
    });
    expect(deployed.status).toBe(201);
    expect((await deployed.json()).owner).toBe(made.info.id);
    const budget = await t.fetch(`/v1/energy/principals/${made.info.id}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ joules: 0.01 }),
    });
    expect(budget.status).toBe(200);
    expect((await t.anonymous("/fn/free-lunch/")).status).toBe(200);
    const used = await (await t.fetch(`/v1/energy/principals/${made.info.id}`)).json();
    expect(used.usedJoules).toBeGreaterThan(0);
    expect(used.invocations).toBe(1);
    // Once the owner's budget cannot cover a call, anonymous callers are refused too.
    await t.fetch(`/v1/energy/principals/${made.info.id}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ joules: used.usedJoules }),
    });
    expect(await code(await t.anonymous("/fn/free-lunch/"))).toEqual([429, "JOULE_ERR_ENERGY_INSUFFICIENT"]);
    await bystander();
  });
});

describe("/metrics", () => {
  it("needs metrics:read, and shows a limited key only its functions", async () => {
    expect(await code(await t.anonymous("/metrics"))).toEqual([401, "JOULE_ERR_REQUEST_UNAUTHORIZED"]);
    const all = t.host.keys.create({ name: "prometheus", scopes: ["metrics:read"] }).key;
    const text = await (await t.fetch("/metrics", as(all))).text();
    expect(text).toContain('function="bystander"');
    const one = t.host.keys.create({ name: "tenant-metrics", scopes: ["metrics:read"], functions: ["hello"] }).key;
    const limited = await (await t.fetch("/metrics", as(one))).text();
    expect(limited).not.toContain('function="bystander"');
    expect(limited).toContain("joule_pool_workers");
  });

  it("is served without a key on the operator's own listener (JOULE_METRICS_ADDR)", async () => {
    const other = await startTestHost({ metricsAddr: "127.0.0.1:0" });
    try {
      const url = other.host.metricsUrl as string;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain("joule_pool_workers");
      expect((await fetch(`${url}/v1/functions`)).status).toBe(404);
      expect((await other.anonymous("/metrics")).status).toBe(401);
    } finally {
      await other.close();
    }
  });
});

describe("malformed requests are the caller's 400, never the host's 500 or the function's 502", () => {
  it("refuses a multipart deploy with an unterminated part or an empty boundary", async () => {
    const bodies: Array<[string, string]> = [
      ["multipart/form-data; boundary=xyz", '--xyz\r\nContent-Disposition: form-data; name="config"\r\n\r\n{}'],
      ["multipart/form-data; boundary=", "--\r\n\r\n"],
      ["multipart/form-data", "garbage"],
      [
        "multipart/form-data; boundary=xyz",
        '--xyz\r\nContent-Disposition: form-data; name="component"; filename="c.wasm"\r\n\r\n\0asm',
      ],
    ];
    for (const [type, body] of bodies) {
      const response = await t.fetch("/v1/functions/broken", {
        method: "PUT",
        headers: { "content-type": type },
        body,
      });
      const [status, errorCode] = await code(response);
      expect(status, type).toBeGreaterThanOrEqual(400);
      expect(status, type).toBeLessThan(500);
      expect(errorCode).toMatch(/^JOULE_ERR_(REQUEST_INVALID|MANIFEST_INVALID|DEPLOY_NOT_A_COMPONENT)$/);
    }
    await bystander();
  });

  it("refuses an invocation without a valid Host, before it is run or charged", async () => {
    const before = await (await t.fetch("/v1/energy/functions/bystander")).json();
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const { port } = new URL(t.url);
        const socket = connect(Number(port), "127.0.0.1", () => socket.end(request));
        let answer = "";
        socket.on("data", (chunk) => {
          answer += chunk;
        });
        socket.on("end", () => resolve(answer));
        socket.on("error", reject);
      });
    for (const request of [
      "GET /fn/bystander/ HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
      "GET /fn/bystander/ HTTP/1.1\r\nHost: evil/path\r\nConnection: close\r\n\r\n",
      "GET /fn/bystander/ HTTP/1.1\r\nHost: user@host\r\nConnection: close\r\n\r\n",
      "GET /fn/bystander/ HTTP/1.0\r\n\r\n",
    ]) {
      const answer = await raw(request);
      expect(answer.split("\r\n")[0], request).toMatch(/^HTTP\/1\.[01] 400 /);
    }
    const after = await (await t.fetch("/v1/energy/functions/bystander")).json();
    expect(after.invocations).toBe(before.invocations);
    await bystander();
  });
});
