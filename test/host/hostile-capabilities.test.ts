/**
 * Guests that try to escape their grants. One guest (test/fixtures/guests/
 * reach) takes the attempt from the request; each attempt must fail with
 * the documented error, be audited where the spec says so, and leave the
 * host serving. docs/capabilities.md lists the attempts and their outcomes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

let t: TestHost;
let up: Upstream;
let bystander: Upstream;

const FILES = { "/data/": "assets/", "/config.json": "config.json" };
const DENIED = { ok: false, name: "CapabilityDeniedError", code: "JOULE_ERR_CAPABILITY_DENIED" };

const deploy = async (name: string, capabilities: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
  const response = await t.deploy(name, {
    component: componentPath("reach"),
    functionDir: reachDir(),
    capabilities: { files: FILES, ...capabilities },
    public: true,
    ...extra,
  });
  expect(response.status, await response.text()).toBe(201);
};

beforeAll(async () => {
  [t, up, bystander] = await Promise.all([startTestHost(), startUpstream(), startUpstream()]);
  // The attacker may call one loopback server (granted by address) and a public name,
  // and names `localhost`, which resolves to loopback and so stays refused.
  await deploy(
    "attacker",
    { kv: ["cache"], outboundHttp: [up.origin, "https://api.example.com", `http://localhost:${up.port}`] },
    { env: { OWN: "mine" } },
  );
  await deploy("victim", { kv: ["private-store"], outboundHttp: ["https://api.example.com"] }, { public: false });
});
afterAll(async () => {
  await t?.close();
  await up?.close();
  await bystander?.close();
});

const call = async (path: string, query: Record<string, string>) =>
  (await t.anonymous(`/fn/attacker${path}?${new URLSearchParams(query)}`)).json();

const deniedAudit = async (action: string) => {
  const { records } = await (
    await t.fetch(`/v1/audit?allowed=false&function=attacker&action=${action}&limit=200`)
  ).json();
  return (records as Array<{ reason: string }>).map((r) => r.reason);
};

describe("a guest that reaches for the network", () => {
  const loopbackSpellings = (port: number) => [
    `http://127.0.0.1:${port}/`,
    `http://2130706433:${port}/`,
    `http://0x7f000001:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://127.1:${port}/`,
    `http://[::1]:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
  ];

  it("cannot call hosts, ports or addresses it was not granted, however they are spelled", async () => {
    const targets = [
      "https://example.org/",
      "http://api.example.com/", // granted for https only
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00:ec2::254]/latest/meta-data/",
      "http://10.0.0.1/",
      "http://192.168.0.1/",
      "http://100.100.100.200/",
      "http://0.0.0.0:80/",
      ...loopbackSpellings(bystander.port),
    ];
    for (const url of targets) {
      const answer = await call("/fetch", { url });
      expect(answer, url).toMatchObject(DENIED);
      expect(answer.error, url).toMatch(
        /^JOULE_ERR_CAPABILITY_DENIED: outboundHttp \S+: not in capabilities\.outboundHttp$/,
      );
    }
    expect(bystander.seen).toEqual([]);
    const reasons = await deniedAudit("outboundHttp:fetch");
    expect(reasons).toEqual(
      expect.arrayContaining(["outboundHttp http://169.254.169.254 not in capabilities.outboundHttp"]),
    );
  });

  it("cannot reach loopback through a granted name that resolves to it (localhost)", async () => {
    const answer = await call("/fetch", { url: `http://localhost:${up.port}/echo` });
    expect(answer).toMatchObject(DENIED);
    expect(answer.error).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    expect(up.seen.some((r) => r.url === "/echo")).toBe(false);
  });

  it("cannot follow a redirect from a granted server to a private or ungranted address", async () => {
    for (const to of [
      "http://169.254.169.254/latest/meta-data/",
      `http://127.0.0.1:${bystander.port}/`,
      `http://localhost:${up.port}/echo`,
      "file:///etc/passwd",
    ]) {
      const answer = await call("/fetch", { url: `${up.origin}/redirect?to=${encodeURIComponent(to)}` });
      expect(answer, to).toMatchObject(DENIED);
    }
    expect(bystander.seen).toEqual([]);
  });

  it("cannot send credentials in the URL or steer the connection with its own Host header", async () => {
    const answer = await call("/fetch", { url: `http://user:pw@127.0.0.1:${up.port}/echo` });
    expect(answer).toMatchObject({ ok: false, name: "TypeError" });
  });

  it("gets the denial as the invocation's answer when it does not catch it, and keeps its instance", async () => {
    const response = await t.anonymous(
      `/fn/attacker/fetch-uncaught?url=${encodeURIComponent("http://169.254.169.254/")}`,
    );
    expect(response.status).toBe(403);
    expect((await response.json()).error).toEqual({
      code: "JOULE_ERR_CAPABILITY_DENIED",
      message: "outboundHttp http://169.254.169.254: not in capabilities.outboundHttp",
    });
    // The guest threw out of its own code; its instance is sound and serves the next request warm.
    const next = await t.anonymous(`/fn/attacker/fetch?url=${encodeURIComponent("http://169.254.169.254/")}`);
    expect(next.status).toBe(200);
    expect(next.headers.get("x-joule-cold-start")).toBe("false");
  });
});

describe("a guest that reaches for files and the host", () => {
  it("cannot read the host's files or traverse out of its mounts", async () => {
    for (const path of [
      "/etc/passwd",
      "/data/../etc/passwd",
      "/data/../../etc/passwd",
      "/data/%2e%2e/%2e%2e/etc/passwd",
      "/data/..%2f..%2fetc/passwd",
      "/data\\..\\..\\etc\\passwd",
      "/data/a.txt\u0000.png",
      "/config.json/../../etc/passwd",
      "data/a.txt",
      "/proc/self/environ",
    ]) {
      const answer = await call("/file", { path });
      expect(answer, path).toMatchObject(DENIED);
      expect(answer.error, path).toMatch(/^JOULE_ERR_CAPABILITY_DENIED: files /);
    }
    expect(await call("/list", { dir: "/" })).toMatchObject(DENIED);
    expect(await call("/list", { dir: "/data/../" })).toMatchObject(DENIED);
    const reasons = await deniedAudit("files:read");
    expect(reasons).toEqual(
      expect.arrayContaining(['files "/etc/passwd" outside the function\'s mounts (capabilities.files)']),
    );
  });

  it("sees no process, require or host environment: only its own env", async () => {
    const seen = await (await t.anonymous("/fn/attacker/host")).json();
    expect(seen).toEqual({
      process: "undefined",
      require: "undefined",
      deno: "undefined",
      bun: "undefined",
      env: { OWN: "mine" },
    });
  });
});

describe("a guest that abuses its other grants", () => {
  it("cannot read another function's key-value store", async () => {
    expect(await call("/kv", { op: "get", store: "private-store", key: "k" })).toEqual({
      ok: false,
      error: 'kv denied: store "private-store" was not granted to this function (capabilities.kv)',
    });
    expect(await deniedAudit("kv:get")).toContain("kv private-store not granted");
  });

  it("cannot go past the key-value limits", async () => {
    expect(await call("/kv", { op: "set", store: "cache", key: "big", size: String(1024 * 1024 + 1) })).toEqual({
      ok: false,
      error: `kv too-large: values are at most ${1024 * 1024} bytes`,
    });
  });

  it("cannot flood the host's log", async () => {
    const response = await t.anonymous("/fn/attacker/log-flood");
    expect(response.status, await response.clone().text()).toBe(200);
    const lines = t.logs.filter((line) => line.function === "attacker" && line.guest);
    expect(lines.length).toBeLessThan(2000);
    expect(t.logs.some((line) => line.dropped && line.function === "attacker")).toBe(true);
  });
});

describe("callers without the right key", () => {
  it("cannot invoke a private function or manage functions, and each attempt is audited", async () => {
    expect((await t.anonymous("/fn/victim/host")).status).toBe(401);
    const invoker = t.host.keys.create({ name: "invoker", scopes: ["functions:invoke"] }).key;
    const put = await t.anonymous("/v1/functions/victim", {
      method: "DELETE",
      headers: { authorization: `Bearer ${invoker}` },
    });
    expect(put.status).toBe(403);
    expect((await put.json()).error.code).toBe("JOULE_ERR_PERMISSION_DENIED");
    const { records } = await (await t.fetch("/v1/audit?allowed=false&limit=200")).json();
    expect(records.some((r: { reason: string }) => /scope/.test(r.reason))).toBe(true);
  });
});

describe("after every attempt", () => {
  it("the host keeps serving", async () => {
    expect(await call("/fetch", { url: `${up.origin}/` })).toMatchObject({ ok: true, body: "hello from upstream" });
    expect(await call("/file", { path: "/data/a.txt" })).toEqual({ ok: true, value: "first asset\n" });
  });
});
