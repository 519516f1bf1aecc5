import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

/** The reach guest imports outbound-http and files too: deploys must grant them. */
const REACH_GRANTS = { outboundHttp: ["http://127.0.0.1:9"], files: { "/config.json": "config.json" } };

beforeAll(async () => {
  t = await startTestHost();
  for (const [name, kv] of [
    ["app", ["cache", "sessions"]],
    ["other", ["private-store"]],
  ] as const) {
    const response = await t.deploy(name, {
      component: componentPath("reach"),
      capabilities: { ...REACH_GRANTS, kv },
      functionDir: reachDir(),
    });
    expect(response.status).toBe(201);
  }
});
afterAll(() => t?.close());

const kv = async (fn: string, query: Record<string, string>) =>
  (await t.fetch(`/fn/${fn}/kv?${new URLSearchParams(query)}`)).json();

describe("key-value stores", () => {
  it("stores, reads, lists and deletes in a granted store", async () => {
    expect(await kv("app", { op: "set", store: "cache", key: "user:1", value: "ada" })).toEqual({ ok: true });
    expect(await kv("app", { op: "set", store: "cache", key: "user:2", value: "grace" })).toEqual({ ok: true });
    expect(await kv("app", { op: "get", store: "cache", key: "user:1" })).toEqual({ ok: true, value: "ada" });
    expect(await kv("app", { op: "list", store: "cache", prefix: "user:" })).toEqual({
      ok: true,
      keys: ["user:1", "user:2"],
    });
    expect(await kv("app", { op: "delete", store: "cache", key: "user:2" })).toEqual({ ok: true, deleted: true });
    expect(await kv("app", { op: "get", store: "cache", key: "user:2" })).toEqual({ ok: true, value: null });
    // Stores are separate namespaces.
    expect(await kv("app", { op: "get", store: "sessions", key: "user:1" })).toEqual({ ok: true, value: null });
  });

  it("lists every key with the prefix, whatever characters follow it", async () => {
    for (const key of ["emoji:😀", "emoji:\uffffx", "emoji:a"]) {
      expect(await kv("app", { op: "set", store: "sessions", key, value: "1" })).toEqual({ ok: true });
    }
    expect((await kv("app", { op: "list", store: "sessions", prefix: "emoji:" })).keys).toHaveLength(3);
  });

  it("expires values after their TTL", async () => {
    expect(await kv("app", { op: "set", store: "cache", key: "brief", value: "x", ttl: "150" })).toEqual({ ok: true });
    expect((await kv("app", { op: "get", store: "cache", key: "brief" })).value).toBe("x");
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await kv("app", { op: "get", store: "cache", key: "brief" })).value).toBeNull();
  });

  it("denies a store the function was not granted, and audits it", async () => {
    expect(await kv("other", { op: "get", store: "cache", key: "user:1" })).toEqual({
      ok: false,
      error: 'kv denied: store "cache" was not granted to this function (capabilities.kv)',
    });
    expect((await kv("app", { op: "set", store: "private-store", key: "k", value: "v" })).ok).toBe(false);
    const { records } = await (await t.fetch("/v1/audit?allowed=false")).json();
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ function: "other", action: "kv:get", reason: "kv cache not granted" }),
        expect.objectContaining({ function: "app", action: "kv:set", reason: "kv private-store not granted" }),
      ]),
    );
  });

  it("bounds keys and values", async () => {
    expect(await kv("app", { op: "set", store: "cache", key: "forever", value: "v", ttl: "1e20" })).toEqual({
      ok: false,
      error: expect.stringMatching(/^kv too-large: a TTL is at most/),
    });
    expect(await kv("app", { op: "set", store: "cache", key: "k".repeat(600), value: "v" })).toEqual({
      ok: false,
      error: "kv too-large: keys are at most 512 bytes",
    });
    expect(await kv("app", { op: "set", store: "cache", key: "big", size: String(1024 * 1024 + 1) })).toEqual({
      ok: false,
      error: `kv too-large: values are at most ${1024 * 1024} bytes`,
    });
  });

  it("stops a store at its quota, so a function cannot fill the disk", async () => {
    const MiB = 1024 * 1024;
    for (let i = 0; i < 64; i++) {
      expect(await kv("app", { op: "set", store: "cache", key: `chunk:${i}`, size: String(MiB - 64) })).toEqual({
        ok: true,
      });
    }
    expect(await kv("app", { op: "set", store: "cache", key: "one-too-many", size: String(MiB) })).toEqual({
      ok: false,
      error: `kv too-large: a store holds at most ${64 * MiB} bytes of values`,
    });
    // Replacing a key counts its new size only; other stores are unaffected.
    expect(await kv("app", { op: "set", store: "cache", key: "chunk:0", value: "small" })).toEqual({ ok: true });
    expect(await kv("app", { op: "set", store: "sessions", key: "fine", value: "v" })).toEqual({ ok: true });
  });

  it("takes many concurrent puts from both workers to one store without failing one", async () => {
    const puts = Array.from({ length: 400 }, (_, i) => ({ key: `load:${i % 50}`, value: String(i) }));
    const answers: unknown[] = [];
    // 40 requests in flight: both workers write at once, the same keys among them.
    await Promise.all(
      Array.from({ length: 40 }, async (_, lane) => {
        for (let i = lane; i < puts.length; i += 40)
          answers.push(
            await kv("app", { op: "set", store: "sessions", ...(puts[i] as { key: string; value: string }) }),
          );
      }),
    );
    expect(answers.filter((answer) => JSON.stringify(answer) !== '{"ok":true}')).toEqual([]);
    // Each key holds one of the values written to it, whole.
    const { value } = await kv("app", { op: "get", store: "sessions", key: "load:7" });
    expect(Number(value) % 50).toBe(7);
  });

  it("keeps what was stored across a restart", async () => {
    await kv("app", { op: "set", store: "sessions", key: "s1", value: "kept" });
    await t.restart();
    expect((await kv("app", { op: "get", store: "sessions", key: "s1" })).value).toBe("kept");
  });
});
