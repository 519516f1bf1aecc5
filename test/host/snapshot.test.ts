import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readChunkedSync } from "../../host/src/store/chunk-store.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ workers: 2 });
  t.host.secrets.set("init-token", "s3cr3t-value-for-snapshots", ["snap", "no-snap"]);
});
afterAll(() => t?.close());

const deploy = (name: string, extra: Record<string, unknown> = {}) =>
  t.deploy(name, { component: componentPath("misbehave"), ...extra });

const state = async (name: string) => (await t.fetch(`/fn/${name}/init-state`)).json();

describe("deploy-time snapshots", () => {
  it("run init(env) once at deploy; every new instance starts from what it left, secrets excluded", async () => {
    const response = await deploy("snap", {
      env: { PLAIN: "1", TOKEN: "secret://init-token" },
      isolation: "per-request",
    });
    expect(response.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const result = await state("snap");
      // Restored, not re-run: a fresh instance each time, yet init ran exactly once (at deploy).
      expect(result).toEqual({
        ran: 1,
        envKeys: ["PLAIN"],
        sum: 332833500,
        envNow: ["PLAIN", "TOKEN"],
      });
    }
    // The snapshot on disk holds no secret: every stored image, decompressed, and every raw file.
    const { snapshotTaken } = await (await t.fetch("/v1/functions/snap")).json();
    const memories = Object.values(snapshotTaken.memories) as Array<{ digest: string }>;
    expect(memories.length).toBeGreaterThan(0);
    for (const { digest } of memories) {
      const image = readChunkedSync(join(t.dataDir, "recipes/sha256", digest.slice("sha256:".length)));
      expect(image.byteLength).toBeGreaterThan(1_000_000);
      expect(image.includes("s3cr3t-value-for-snapshots")).toBe(false);
      // The same search finds what init did keep: a plain env value.
      expect(image.includes("PLAIN")).toBe(true);
    }
    for (const dir of ["blobs/sha256", "recipes/sha256", "chunks/sha256"]) {
      for (const file of await readdir(join(t.dataDir, dir))) {
        expect((await readFile(join(t.dataDir, dir, file))).includes("s3cr3t-value-for-snapshots")).toBe(false);
      }
    }
  });

  it('with "snapshot": false, run init in every new instance instead, with the same env', async () => {
    const initLogs = () =>
      t.logs.filter((line) => line.function === "no-snap" && line.msg === "init ran" && line.phase !== "init").length;
    const env = { PLAIN: "1", TOKEN: "secret://init-token" };
    expect((await deploy("no-snap", { snapshot: false, isolation: "per-request", env })).status).toBe(201);
    for (let i = 1; i <= 2; i++) {
      expect(await state("no-snap")).toMatchObject({ ran: 1, envKeys: ["PLAIN"], envNow: ["PLAIN", "TOKEN"] });
      expect(initLogs()).toBe(i);
    }
    const record = await (await t.fetch("/v1/functions/no-snap")).json();
    expect(record.snapshot).toBe(false);
    expect(record.snapshotTaken).toBeUndefined();
    // With a snapshot, no request ran init: it ran once, at deploy, and its log line says so.
    const snapInit = t.logs.filter((line) => line.function === "snap" && line.msg === "init ran");
    expect(snapInit.map((line) => line.phase)).toEqual(["init"]);
  });

  it("fail the deploy with JOULE_ERR_DEPLOY_INIT_FAILED when init throws or runs past its limits, and keep the live version", async () => {
    expect((await deploy("init-fails")).status).toBe(201);
    const thrown = await deploy("init-fails", { env: { INIT_FAIL: "1" } });
    expect(thrown.status).toBe(422);
    const { error } = await thrown.json();
    expect(error.code).toBe("JOULE_ERR_DEPLOY_INIT_FAILED");
    expect(error.message).toContain("init refused to start");
    const busy = await deploy("init-fails", { env: { INIT_BUSY: "1" }, limits: { fuel: 50_000_000 } });
    expect(busy.status).toBe(422);
    expect((await busy.json()).error.details.cause).toBe("JOULE_ERR_LIMIT_FUEL");
    expect((await state("init-fails")).ran).toBe(1);
  });

  it("refuse with JOULE_ERR_DEPLOY_SNAPSHOT an init that holds a host resource (a timer)", async () => {
    const response = await deploy("init-timer", { env: { INIT_TIMER: "1" } });
    expect(response.status).toBe(422);
    const { error } = await response.json();
    expect(error.code).toBe("JOULE_ERR_DEPLOY_SNAPSHOT");
    expect(error.details.resources).toEqual(["wasi:clocks/monotonic-clock#subscribeInstant"]);
    // Without a snapshot, the same init runs in each new instance and the function works.
    expect((await deploy("init-timer", { env: { INIT_TIMER: "1" }, snapshot: false })).status).toBe(201);
    expect((await state("init-timer")).ran).toBe(1);
  });

  it("snapshot core-Wasm guests too: memory and globals come back in every new instance", async () => {
    const response = await t.deploy("wat-snap", { component: componentPath("lifecycle"), isolation: "per-request" });
    expect(response.status).toBe(201);
    expect((await response.json()).snapshotTaken).toBeDefined();
    // "ini" from memory, "1" from the global init incremented: both restored, init not run again.
    for (let i = 0; i < 3; i++) expect(await (await t.fetch("/fn/wat-snap/")).text()).toBe("ini1");
  });

  it("refuse with JOULE_ERR_DEPLOY_SNAPSHOT a component with an init whose state cannot be captured", async () => {
    const deployStart = (extra: Record<string, unknown>) =>
      t.deploy("wat-start", { component: componentPath("lifecycle-start"), ...extra });
    const refused = await deployStart({});
    expect(refused.status).toBe(422);
    const { error } = await refused.json();
    expect(error.code).toBe("JOULE_ERR_DEPLOY_SNAPSHOT");
    expect(error.message).toContain("start function");
    // With snapshots off, init runs in each new instance instead.
    expect((await deployStart({ snapshot: false })).status).toBe(201);
    expect(await (await t.fetch("/fn/wat-start/")).text()).toBe("ini1");
  });

  it("refuse with JOULE_ERR_DEPLOY_SNAPSHOT an init that leaves more memory in use than a snapshot may hold", async () => {
    const deployBig = (extra: Record<string, unknown>) =>
      t.deploy("wat-big", { component: componentPath("lifecycle-big"), limits: { memoryMb: 300 }, ...extra });
    const refused = await deployBig({});
    expect(refused.status).toBe(422);
    const { error } = await refused.json();
    expect(error).toMatchObject({ code: "JOULE_ERR_DEPLOY_SNAPSHOT", details: { limitMb: 256 } });
    expect(error.message).toContain("snapshot: false");
    expect((await deployBig({ snapshot: false })).status).toBe(201);
  });

  it("warm the request path up before the capture, without calling the function's fetch", async () => {
    expect((await deploy("warm", { isolation: "reuse" })).status).toBe(201);
    const first = await t.fetch("/fn/warm/count");
    const later = await t.fetch("/fn/warm/count");
    expect(first.headers.get("x-joule-cold-start")).toBe("true");
    expect(later.headers.get("x-joule-cold-start")).toBe("false");
    // The warm-up did not reach the function's fetch: its counter starts at 1.
    expect((await first.json()).requests).toBe(1);
    // Measured in fuel, which is deterministic: without the warm-up, a new instance's first
    // request compiles the request path and used about 40% more than the next one; with it,
    // 15% (what remains is this route's own first run).
    const fuel = (response: Response) => Number(response.headers.get("x-joule-fuel"));
    expect(fuel(first)).toBeLessThan(fuel(later) * 1.25);
  });

  it("refuse with JOULE_ERR_DEPLOY_SNAPSHOT an init that leaves the engine unfit for the warm-up request", async () => {
    const refused = await deploy("warm-broken", { env: { INIT_BREAKS_JSON: "1" } });
    expect(refused.status).toBe(422);
    const { error } = await refused.json();
    expect(error.code).toBe("JOULE_ERR_DEPLOY_SNAPSHOT");
    expect(error.message).toContain("warm-up request after init() failed");
    expect(error.message).toContain("JSON.parse was replaced by init");
    expect((await deploy("warm-broken", { env: { INIT_BREAKS_JSON: "1" }, snapshot: false })).status).toBe(201);
  });

  it("survive a restart: instances start from the stored snapshot", async () => {
    const before = (await (await t.fetch("/v1/functions/snap")).json()).snapshotTaken;
    expect(Object.keys(before.memories).length).toBeGreaterThan(0);
    await t.restart();
    expect((await (await t.fetch("/v1/functions/snap")).json()).snapshotTaken).toEqual(before);
    const result = await state("snap");
    expect(result.ran).toBe(1);
    expect(result.envNow).toEqual(["PLAIN", "TOKEN"]);
  });
});
