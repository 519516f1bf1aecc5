import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const VALUE = "s3cr3t-value-that-must-not-leak";
let t: TestHost;

beforeAll(async () => {
  t = await startTestHost();
});
afterAll(() => t?.close());

const deploy = (env: Record<string, string>) =>
  t.deploy("vault", { component: componentPath("misbehave"), env, scaling: { idleTimeoutMs: 1000 } });

describe("secrets in env", () => {
  it("refuses a deploy that references a secret that is not set, naming it", async () => {
    const response = await deploy({ TOKEN: "secret://api-token" });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.details.problems).toEqual([
      "env.TOKEN: secret://api-token is not set for vault (joule secrets set api-token --functions vault)",
    ]);
  });

  it("hands the function the value, and shows everyone else only the reference", async () => {
    // Set through the CLI, as an operator would, into the host's data dir.
    await promisify(execFile)(process.execPath, [
      join(ROOT, "host/bin/joule.js"),
      "secrets",
      "set",
      "api-token",
      "--functions",
      "vault",
      "--data-dir",
      t.dataDir,
      "--value",
      VALUE,
    ]);
    const deployed = await deploy({ TOKEN: "secret://api-token", PLAIN: "visible" });
    expect(deployed.status).toBe(201);
    expect(JSON.stringify(await deployed.json())).not.toContain(VALUE);
    const seen = await (await t.fetch("/fn/vault/env")).json();
    expect(seen.env).toEqual({ TOKEN: VALUE, PLAIN: "visible" });
    expect((await (await t.fetch("/v1/functions/vault")).json()).env).toEqual({
      TOKEN: "secret://api-token",
      PLAIN: "visible",
    });
    const audit = await (await t.fetch("/v1/audit")).text();
    expect(audit).not.toContain(VALUE);
    expect(JSON.stringify(t.logs)).not.toContain(VALUE);
  });

  it("is only for the functions it names: another function cannot read it, or learn it exists", async () => {
    const response = await t.deploy("thief", {
      component: componentPath("misbehave"),
      env: { T: "secret://api-token" },
    });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.details.problems).toEqual([
      "env.T: secret://api-token is not set for thief (joule secrets set api-token --functions thief)",
    ]);
  });

  it("gives new instances a rotated value", async () => {
    t.host.secrets.set("api-token", "rotated");
    // The warm instance keeps what it was made with; once it idles out, a new one reads the new value.
    await new Promise((resolve) => setTimeout(resolve, 2600));
    expect((await (await t.fetch("/fn/vault/env")).json()).env.TOKEN).toBe("rotated");
  });

  it("fails an instantiation whose secret was deleted, naming the secret only", async () => {
    t.host.secrets.delete("api-token");
    await new Promise((resolve) => setTimeout(resolve, 2600));
    const response = await t.fetch("/fn/vault/env");
    expect(response.status).toBe(503);
    const { error } = await response.json();
    expect(error).toMatchObject({ code: "JOULE_ERR_SECRET_MISSING", message: expect.stringContaining("api-token") });
    expect(error.message).not.toContain("rotated");
  });
});
