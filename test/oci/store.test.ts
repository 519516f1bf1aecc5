/**
 * What the host keeps per function: the artifact it would push, with the
 * engine all JS functions share stored once.
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentBytes, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost();
});
afterAll(() => t?.close());

/** Bytes in the data dir, without the databases (they grow with use, not with deploys). */
function storeBytes(): number {
  const out = execFileSync("du", ["-sb", "--exclude=*.db*", "--exclude=tmp", "--exclude=host.lock", t.dataDir]);
  return Number(out.toString().split("\t")[0]);
}

describe("the host's store", () => {
  it("grows by under 2 MiB for each further JS function, and serves each artifact byte-identical after a restart", async () => {
    expect((await t.deploy("hello")).status).toBe(201);
    const afterFirst = storeBytes();
    expect((await t.deploy("json-api")).status).toBe(201);
    const growth = storeBytes() - afterFirst;
    console.log(`store growth for a second JS function: ${(growth / 1024 / 1024).toFixed(2)} MiB`);
    expect(growth).toBeLessThan(2 * 1024 * 1024);

    await t.restart();
    for (const name of ["hello", "json-api"]) {
      const record = await (await t.fetch(`/v1/functions/${name}`)).json();
      const artifact = await t.host.registry.artifact(record.artifact.digest);
      expect(Buffer.from(artifact?.layer.bytes ?? []).equals(await componentBytes(name))).toBe(true);
      const manifest = JSON.parse(Buffer.from(artifact?.manifest.bytes ?? []).toString());
      expect(manifest.layers[0].digest).toBe(record.component.digest);
      expect((await t.fetch(`/fn/${name}/`)).status).toBeLessThan(500);
    }
    const index = JSON.parse(await readFile(`${t.dataDir}/index.json`, "utf8"));
    expect(
      index.manifests.map(
        (m: { annotations: Record<string, string> }) => m.annotations["org.opencontainers.image.ref.name"],
      ),
    ).toEqual(["hello", "json-api"]);
  });
});
