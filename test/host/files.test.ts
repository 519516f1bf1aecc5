/**
 * capabilities.files (read-only files shipped with the function) and the
 * deploy-time grant checks: a component importing a capability its deploy
 * does not grant is refused (JOULE_ERR_CAPABILITY_MISSING), and a deploy may
 * narrow the manifest's grants but never widen them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentBytes, componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

const FILES = { "/data/": "assets/", "/config.json": "config.json" };
const ALL = { kv: ["cache"], outboundHttp: ["http://127.0.0.1:9"], files: FILES };

const deploy = (name: string, body: Record<string, unknown>) =>
  t.deploy(name, { component: componentPath("reach"), functionDir: reachDir(), ...body });

beforeAll(async () => {
  t = await startTestHost();
  const response = await deploy("reach", { capabilities: ALL });
  expect(response.status, await response.text()).toBe(201);
});
afterAll(() => t?.close());

const read = async (fn: string, path: string) =>
  (await t.fetch(`/fn/${fn}/file?${new URLSearchParams({ path })}`)).json();

describe("shipped files", () => {
  it("reads the files of its mounts, and lists a mounted directory", async () => {
    expect(await read("reach", "/config.json")).toEqual({
      ok: true,
      value: '{ "greeting": "hello from a shipped file" }\n',
    });
    expect(await read("reach", "/data/nested/b.txt")).toEqual({ ok: true, value: "nested asset\n" });
    expect(await (await t.fetch("/fn/reach/list?dir=/data/")).json()).toEqual({
      ok: true,
      value: ["/data/a.txt", "/data/nested/b.txt"],
    });
    expect(await read("reach", "/data/missing.txt")).toEqual({
      ok: false,
      name: "Error",
      error: 'files not-found: no file "/data/missing.txt" was shipped with the function',
    });
  });

  it("records the bundle as {path, digest, size} and stores each file content-addressed", async () => {
    const record = await (await t.fetch("/v1/functions/reach")).json();
    expect(record.files).toEqual([
      { path: "/config.json", digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), size: 44 },
      { path: "/data/a.txt", digest: expect.stringMatching(/^sha256:/), size: 12 },
      { path: "/data/nested/b.txt", digest: expect.stringMatching(/^sha256:/), size: 13 },
    ]);
  });

  it("keeps the shipped files across a restart (they are not reclaimed as garbage)", async () => {
    await t.restart();
    expect(await read("reach", "/data/a.txt")).toEqual({ ok: true, value: "first asset\n" });
  });

  it("takes the files as multipart parts, as `joule deploy` sends them", async () => {
    const form = new FormData();
    form.set("config", JSON.stringify({ capabilities: { ...ALL, files: { "/etc/app.json": "x.json" } } }));
    form.set("component", new Blob([new Uint8Array(await componentBytes("reach"))]), "component.wasm");
    form.append("file:/etc/app.json", new Blob(['{"uploaded":true}']), "file");
    const response = await t.fetch("/v1/functions/uploaded", { method: "PUT", body: form });
    expect(response.status, await response.text()).toBe(201);
    expect(await read("uploaded", "/etc/app.json")).toEqual({ ok: true, value: '{"uploaded":true}' });
    // A part outside every mount is refused.
    const stray = new FormData();
    stray.set("config", JSON.stringify({ capabilities: { ...ALL, files: { "/etc/app.json": "x.json" } } }));
    stray.set("component", new Blob([new Uint8Array(await componentBytes("reach"))]), "component.wasm");
    stray.append("file:/etc/app.json", new Blob(["{}"]), "file");
    stray.append("file:/elsewhere.txt", new Blob(["x"]), "file");
    const refused = await t.fetch("/v1/functions/uploaded", { method: "PUT", body: stray });
    expect(refused.status).toBe(400);
    expect((await refused.json()).error.message).toContain("/elsewhere.txt is under no mount");
  });

  it("refuses a source that leaves the function's directory", async () => {
    for (const source of ["../outside", "/etc/passwd", "assets/%2e%2e/x", "assets\\..\\x"]) {
      const response = await t.deploy("escaping", {
        component: componentPath("reach"),
        capabilities: { ...ALL, files: { "/x": source } },
      });
      expect(response.status, source).toBe(400);
      expect((await response.json()).error.code).toBe("JOULE_ERR_MANIFEST_INVALID");
    }
  });
});

describe("grants checked at deploy", () => {
  it("refuses a component that imports capabilities the deploy does not grant, naming each", async () => {
    const response = await deploy("ungranted", { capabilities: { kv: ["cache"] } });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.code).toBe("JOULE_ERR_CAPABILITY_MISSING");
    // outboundHttp is not among them: the engine's own fetch uses wasi:http, which every JS function
    // imports; the grant is checked on every request instead.
    expect(error.details.missing).toEqual(["capabilities.files (the component imports joule:function/files)"]);
  });

  it("narrows the manifest's grants, and refuses to widen them", async () => {
    const narrowed = await deploy("narrowed", {
      capabilities: { ...ALL, kv: ["cache", "sessions"], outboundHttp: ["https://*.example.com"] },
      narrow: { kv: ["sessions"], outboundHttp: ["https://api.example.com"] },
    });
    expect(narrowed.status, await narrowed.clone().text()).toBe(201);
    expect((await narrowed.json()).capabilities).toMatchObject({
      kv: ["sessions"],
      outboundHttp: ["https://api.example.com"],
    });
    const kv = await (await t.fetch("/fn/narrowed/kv?op=get&store=cache&key=k")).json();
    expect(kv).toEqual({
      ok: false,
      error: 'kv denied: store "cache" was not granted to this function (capabilities.kv)',
    });

    const widened = await deploy("widened", {
      capabilities: ALL,
      narrow: { kv: ["cache", "other"], outboundHttp: ["https://example.org"], files: { "/etc/": "assets/" } },
    });
    expect(widened.status).toBe(400);
    expect((await widened.json()).error.details.problems).toEqual([
      'narrow.kv: "other" is not in capabilities.kv',
      'narrow.outboundHttp: "https://example.org" is not within capabilities.outboundHttp',
      'narrow.files: "/etc/": "assets/" is not in capabilities.files',
    ]);

    // Narrowing a capability away leaves the component without it: refused.
    const emptied = await deploy("emptied", { capabilities: ALL, narrow: { files: {} } });
    expect((await emptied.json()).error.code).toBe("JOULE_ERR_CAPABILITY_MISSING");
  });
});
