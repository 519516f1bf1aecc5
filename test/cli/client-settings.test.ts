/**
 * The README has users `export JOULE_API_KEY=…` (and JOULE_HOST) in their
 * shell; the host and the commands that read a data dir here must still
 * start in that shell, while a real typo still stops them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule, startJoule } from "../support/cli.ts";

const CLIENT_ENV = { JOULE_API_KEY: "jk_0123456789abcdef_notarealkey", JOULE_HOST: "http://127.0.0.1:9" };

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "joule-client-env-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("client settings in the environment", () => {
  it("do not stop `joule serve` (what `npm start` runs)", async () => {
    const host = startJoule(["serve", "--no-examples", "--port", "0", "--data-dir", join(work, "serve")], {
      env: { ...CLIENT_ENV, JOULE_WORKERS: "1" },
    });
    try {
      await host.waitFor(/Joule is serving on http:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await host.stop();
    }
    expect(host.output()).not.toMatch(/unknown setting/);
  });

  it("do not stop `joule secrets` or a local `joule keys`", async () => {
    // The data dir the host of the test above made (these commands open only a host's).
    const dataDir = join(work, "serve");
    const env = { ...CLIENT_ENV, JOULE_SECRETS_KEY_FILE: "" };
    const secrets = await joule(["secrets", "list", "--data-dir", dataDir], { env });
    expect(secrets.stderr).not.toMatch(/unknown setting/);
    expect(secrets.code).toBe(0);
    const keys = await joule(["keys", "list", "--data-dir", dataDir], { env });
    expect(keys.stderr).not.toMatch(/unknown setting/);
    expect(keys.code).toBe(0);
  });

  it("while a misspelt host setting still stops the host, with the name it meant", async () => {
    const { code, stderr } = await joule(["serve", "--no-examples", "--port", "0", "--data-dir", join(work, "typo")], {
      env: { JOULE_WORKER: "1" },
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/unknown setting JOULE_WORKER \(did you mean JOULE_WORKERS\?\)/);
  });
});
