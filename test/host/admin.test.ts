import { readdir, readFile, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DERIVATION_VERSION } from "../../host/src/store/function-store.ts";
import { componentBytes, componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost();
});
afterAll(() => t?.close());

async function storedFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const dir of ["blobs/sha256", "functions"]) {
    for (const file of await readdir(join(t.dataDir, dir))) files.push(`${dir}/${file}`);
  }
  return files.sort();
}

function upload(name: string, component: Uint8Array, config: unknown = {}): Promise<Response> {
  const form = new FormData();
  form.set("config", JSON.stringify(config));
  form.set("component", new Blob([component as Uint8Array<ArrayBuffer>]), "component.wasm");
  return t.fetch(`/v1/functions/${name}`, { method: "PUT", body: form });
}

describe("the admin API", () => {
  it("deploys an uploaded component, lists it, shows it, redeploys and deletes it", async () => {
    const created = await upload("greeter", await componentBytes("hello"), {
      env: { GREETING: "Hi" },
      limits: { timeoutMs: 2000 },
    });
    expect(created.status).toBe(201);
    const record = await created.json();
    expect(record).toMatchObject({ name: "greeter", env: { GREETING: "Hi" }, limits: { timeoutMs: 2000 } });
    expect(record.component.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(record.url).toBe(`${t.url}/fn/greeter/`);
    expect(await (await t.fetch("/fn/greeter/?name=x")).json()).toMatchObject({ greeting: "Hi, x!" });

    expect((await (await t.fetch("/v1/functions")).json()).functions.map((f: { name: string }) => f.name)).toContain(
      "greeter",
    );
    expect(await (await t.fetch("/v1/functions/greeter")).json()).toMatchObject({
      name: "greeter",
      version: record.version,
    });

    const updated = await upload("greeter", await componentBytes("hello"), { env: { GREETING: "Bye" } });
    expect(updated.status).toBe(200);
    expect((await updated.json()).version).not.toBe(record.version);
    expect(await (await t.fetch("/fn/greeter/?name=x")).json()).toMatchObject({ greeting: "Bye, x!" });

    expect((await t.fetch("/v1/functions/greeter", { method: "DELETE" })).status).toBe(204);
    expect((await t.fetch("/fn/greeter/")).status).toBe(404);
    expect((await t.fetch("/v1/functions/greeter")).status).toBe(404);
    expect((await t.fetch("/v1/functions/greeter", { method: "DELETE" })).status).toBe(404);
  });

  it("stores the transpiled glue without jco's per-call debug checks (a jco upgrade must keep this)", async () => {
    const record = await (await upload("glue-check", await componentBytes("hello"))).json();
    const dir = join(t.dataDir, "cache", `v${DERIVATION_VERSION}`, record.component.digest.slice("sha256:".length));
    // The glue is shared by digest between functions; meta.json says where it is.
    const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8"));
    const glue = await readFile(join(dir, meta.glue), "utf8");
    expect(glue).toContain("const _debugLog");
    expect(glue).not.toContain("JCO_DEBUG");
    expect((await t.fetch("/v1/functions/glue-check", { method: "DELETE" })).status).toBe(204);
  });

  it("treats deploying the live version again as a no-op", async () => {
    const tiny = componentPath("tiny");
    const first = await (await t.deploy("again", { component: tiny, env: { A: "1" } })).json();
    const again = await t.deploy("again", { component: tiny, env: { A: "1" } });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ version: first.version, deployedAt: first.deployedAt });
    expect((await (await t.deploy("again", { component: tiny, env: { A: "2" } })).json()).version).not.toBe(
      first.version,
    );
  });

  it("refuses an invalid function name", async () => {
    const response = await t.deploy("Bad_Name", { component: componentPath("tiny") });
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe("JOULE_ERR_REQUEST_INVALID");
  });

  it("refuses bytes that are not a component, and stores nothing", async () => {
    const before = await storedFiles();
    for (const bytes of [Buffer.from("hello, not wasm"), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])]) {
      const response = await upload("junk", bytes);
      expect(response.status).toBe(400);
      const { error } = await response.json();
      expect(error.code).toBe("JOULE_ERR_DEPLOY_NOT_A_COMPONENT");
      expect(error.message).toMatch(/joule build/);
    }
    // A component header followed by garbage fails later, in transpile.
    const truncated = (await componentBytes("tiny")).subarray(0, 200);
    const response = await upload("junk", truncated);
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe("JOULE_ERR_DEPLOY_INVALID_COMPONENT");
    expect(await storedFiles()).toEqual(before);
    expect((await t.fetch("/v1/functions/junk")).status).toBe(404);
  });

  it("keeps the previous version serving when a deploy is cut off half way", async () => {
    expect((await t.deploy("hello", { env: { GREETING: "Stable" } })).status).toBe(201);
    const before = await storedFiles();
    const component = await componentBytes("hello");
    const boundary = "----joule-test";
    const head = Buffer.from(
      `--${boundary}\r\ncontent-disposition: form-data; name="component"; filename="c.wasm"\r\ncontent-type: application/wasm\r\n\r\n`,
    );
    await new Promise<void>((resolve) => {
      const url = new URL("/v1/functions/hello", t.url);
      const req = httpRequest(url, {
        method: "PUT",
        headers: {
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "content-length": String(head.length + component.length + 100),
        },
      });
      req.on("error", () => resolve());
      req.on("response", () => resolve());
      req.write(head);
      req.write(component.subarray(0, component.length / 2), () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100);
      });
    });
    expect(await (await t.fetch("/fn/hello/?name=a")).json()).toMatchObject({ greeting: "Stable, a!" });
    expect(await storedFiles()).toEqual(before);
    expect(await readdir(join(t.dataDir, "tmp"))).toEqual([]);
  });

  it("serves every deployed function again after a restart, without redeploying", async () => {
    expect((await t.deploy("json-api")).status).toBe(201);
    await t.restart();
    expect(await (await t.fetch("/fn/hello/?name=b")).json()).toMatchObject({ greeting: "Stable, b!" });
    expect((await t.fetch("/fn/json-api/sum", { method: "POST", body: '{"numbers":[2]}' })).status).toBe(200);
    expect(t.logs.some((l) => l.msg === "deployed" && l.function === "json-api")).toBe(true);
  });

  it("reclaims the files of deleted and replaced versions at start", async () => {
    expect((await t.deploy("doomed", { component: componentPath("trap") })).status).toBe(201);
    const record = await (await t.fetch("/v1/functions/doomed")).json();
    const blob = join(t.dataDir, "blobs/sha256", record.component.digest.slice(7));
    expect((await t.fetch("/v1/functions/doomed", { method: "DELETE" })).status).toBe(204);
    expect(await readdir(join(t.dataDir, "blobs/sha256"))).toContain(record.component.digest.slice(7));
    await t.restart();
    await expect(readFile(blob)).rejects.toThrow();
    // What live functions use stays.
    expect(await (await t.fetch("/fn/hello/?name=c")).json()).toMatchObject({ greeting: "Stable, c!" });
  });

  it("reports a corrupt stored record at start and serves the others", async () => {
    await writeFile(join(t.dataDir, "functions", "broken.json"), "{ not json");
    await t.restart();
    expect(t.logs.some((l) => l.msg === "stored function could not be loaded" && l.function === "broken.json")).toBe(
      true,
    );
    expect((await t.fetch("/fn/hello/")).status).toBe(200);
    expect(JSON.parse(await readFile(join(t.dataDir, "functions", "hello.json"), "utf8")).name).toBe("hello");
  });
});

describe("the data dir", () => {
  it("belongs to one host at a time", async () => {
    const { startHost } = await import("../../host/src/host.ts");
    const { loadConfig } = await import("../../host/src/config.ts");
    await expect(startHost(loadConfig({ port: 0, dataDir: t.dataDir, logLevel: "silent" }))).rejects.toThrow(
      /in use by another Joule host \(pid \d+\)/,
    );
    // The first host is unaffected.
    expect((await t.fetch("/healthz")).status).toBe(200);
  });
});
