import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DERIVATION_VERSION } from "../../host/src/store/function-store.ts";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
const JS = ["hello", "json-api", "echo"];

beforeAll(async () => {
  t = await startTestHost();
  for (const name of JS) expect((await t.deploy(name)).status).toBe(201);
});
afterAll(() => t?.close());

async function meta(name: string) {
  const record = await (await t.fetch(`/v1/functions/${name}`)).json();
  const dir = join(t.dataDir, "cache", `v${DERIVATION_VERSION}`, record.component.digest.slice("sha256:".length));
  return JSON.parse(await readFile(join(dir, "meta.json"), "utf8"));
}

describe("JS functions share one engine", () => {
  it("stores and compiles the engine's code module once, with a memory image per function", async () => {
    const metas = await Promise.all(JS.map(meta));
    const engines = new Set(metas.map((m) => m.modules["component.core.wasm"]));
    expect(engines.size).toBe(1);
    for (const m of metas) expect(m.images["component.core.wasm"]).toBe("component.core.wasm.image");
    const modules = await readdir(join(t.dataDir, "cache", `v${DERIVATION_VERSION}`, "modules"));
    // The engine, plus jco's small shim modules (also shared).
    expect(modules.length).toBeLessThanOrEqual(4);
    const engine = await stat(
      join(t.dataDir, "cache", `v${DERIVATION_VERSION}`, "modules", `${[...engines][0].slice(7)}.wasm`),
    );
    expect(engine.size).toBeGreaterThan(5_000_000);
  });

  it("runs each function from its own image", async () => {
    expect((await (await t.fetch("/fn/hello/?name=x")).json()).greeting).toBe("Hello, x!");
    expect((await (await t.fetch("/fn/json-api/sum", { method: "POST", body: '{"numbers":[4]}' })).json()).sum).toBe(4);
    expect(await (await t.fetch("/fn/echo/", { method: "POST", body: "same bytes" })).text()).toBe("same bytes");
  });
});
