/**
 * Issue 13: a tenant read the host's secrets.db-wal and found another
 * function's secret in plain text. Secrets at rest are now sealed under a
 * key kept outside the data dir; these tests read every byte of the data
 * dir (the database, its -wal and -shm, everything else) for the values.
 */
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config.ts";
import { startHost } from "../../host/src/host.ts";
import { joule } from "../support/cli.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

const FROM_CLI = "cli-s3cr3t-8f0d2c51-never-on-disk";
const FROM_HOST = "host-s3cr3t-4b7e91aa-never-on-disk";
const ROTATED = "rotated-s3cr3t-0c3a77e2-never-on-disk";
const DELETED = "deleted-s3cr3t-e5d1f086-never-on-disk";
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=\n?$/;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "joule-secrets-at-rest-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** Every file under `dir`, recursively, and where in it each needle occurs as raw bytes. */
async function rawSearch(dir: string, needles: Array<string | Uint8Array>): Promise<string[]> {
  const hits: string[] = [];
  let files = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue; // a WAL checkpointed away meanwhile
      throw error;
    }
    files++;
    for (const needle of needles) {
      if (bytes.includes(typeof needle === "string" ? needle : Buffer.from(needle))) {
        const shown = typeof needle === "string" ? needle : `${Buffer.from(needle).toString("hex").slice(0, 16)}…`;
        hits.push(`${relative(dir, path)}: ${shown}`);
      }
    }
  }
  expect(files).toBeGreaterThan(0);
  return hits;
}

const deployVault = (t: TestHost, name: string, env: Record<string, string>) =>
  t.deploy(name, { component: componentPath("misbehave"), env, scaling: { idleTimeoutMs: 1000 } });

async function envSeen(t: TestHost, name: string): Promise<Record<string, string>> {
  const response = await t.fetch(`/fn/${name}/env`);
  expect(response.status).toBe(200);
  return (await response.json()).env;
}

/** A data dir whose store holds one secret sealed by `joule secrets`, and its (default) key file. */
async function sealedDataDir(name: string): Promise<{ dataDir: string; keyFile: string }> {
  const dataDir = join(root, name);
  const set = await joule(["secrets", "set", "one", "--functions", "*", "--data-dir", dataDir], { input: FROM_CLI });
  expect(set.code, set.stderr).toBe(0);
  return { dataDir, keyFile: `${dataDir}.secrets-key` };
}

const startOn = (dataDir: string, secretsKeyFile?: string) =>
  startHost(loadConfig({ port: 0, workers: 1, dataDir, logLevel: "silent", secretsKeyFile }));

describe("secrets at rest, on a running host", () => {
  let t: TestHost;
  beforeAll(async () => {
    t = await startTestHost();
  });
  afterAll(() => t?.close());

  it("never puts a value in plain text in any file of the data dir, and the function still gets it", async () => {
    // An operator sets one with the CLI (from stdin), the host's own API another.
    const cli = await joule(["secrets", "set", "from-cli", "--functions", "vault", "--data-dir", t.dataDir], {
      input: `${FROM_CLI}\n`,
    });
    expect(cli.code, cli.stderr).toBe(0);
    t.host.secrets.set("from-host", FROM_HOST, ["vault"]);
    t.host.secrets.set("gone", DELETED, ["vault"]);
    expect((await deployVault(t, "vault", { A: "secret://from-cli", B: "secret://from-host" })).status).toBe(201);
    expect(await envSeen(t, "vault")).toEqual({ A: FROM_CLI, B: FROM_HOST });

    // A rotation and a delete leave neither the old value nor its old sealed blob behind.
    const readSealed = (name: string) => {
      const db = new DatabaseSync(join(t.dataDir, "secrets.db"), { readOnly: true });
      try {
        return (db.prepare("SELECT sealed FROM secrets WHERE name = ?").get(name) as { sealed: Uint8Array }).sealed;
      } finally {
        db.close();
      }
    };
    const oldFromHost = readSealed("from-host");
    const oldGone = readSealed("gone");
    const rotate = await joule(["secrets", "set", "from-host", "--value", ROTATED, "--data-dir", t.dataDir]);
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(t.host.secrets.delete("gone")).toBe(true);

    const files = await readdir(t.dataDir);
    // A rollback journal (store/sqlite.ts): no WAL keeps old frames; the search covers every file there is.
    expect(files).toContain("secrets.db");
    expect(files).not.toContain("secrets.db-wal");
    expect(await rawSearch(t.dataDir, [FROM_CLI, FROM_HOST, ROTATED, DELETED, oldFromHost, oldGone])).toEqual([]);

    // After a restart the host reads the same key from its file: new instances still get the values.
    await t.restart();
    expect(await envSeen(t, "vault")).toEqual({ A: FROM_CLI, B: ROTATED });
    expect(await rawSearch(t.dataDir, [FROM_CLI, FROM_HOST, ROTATED, DELETED])).toEqual([]);
    expect(JSON.stringify(t.logs)).not.toContain(FROM_CLI);
  });

  it("keeps the key beside the data dir, never in it: 0600, 32 random bytes, its place logged and its bytes nowhere", async () => {
    const keyFile = `${t.dataDir}.secrets-key`;
    expect(relative(t.dataDir, keyFile).startsWith("..")).toBe(true);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const text = await readFile(keyFile, "utf8");
    expect(text).toMatch(BASE64_KEY);
    const raw = Buffer.from(text.trim(), "base64");
    expect(raw.byteLength).toBe(32);
    expect(await rawSearch(t.dataDir, [text.trim(), raw, raw.toString("hex")])).toEqual([]);
    const logged = t.logs.filter((line) => line.secretsKeyFile !== undefined);
    // Made at the first start, read at the restart: one line each, the path but never the key.
    expect(logged.map((line) => [line.secretsKeyFile, line.generated])).toEqual([
      [keyFile, true],
      [keyFile, false],
    ]);
    expect(JSON.stringify(t.logs)).not.toContain(text.trim());
  });

  it("refuses a value moved to another name: the instance fails naming the secret, never serving it", async () => {
    t.host.secrets.set("target", "the-target-value", ["mover"]);
    expect((await deployVault(t, "mover", { T: "secret://target" })).status).toBe(201);
    // Someone with write access to the data dir copies another secret's sealed value under this name.
    const db = new DatabaseSync(join(t.dataDir, "secrets.db"));
    try {
      db.exec("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'from-cli') WHERE name = 'target'");
    } finally {
      db.close();
    }
    const response = await t.fetch("/fn/mover/env");
    expect(response.status).toBe(503);
    const { error } = await response.json();
    expect(error.code).toBe("JOULE_ERR_SECRET_UNREADABLE");
    expect(error.message).toContain("secret target does not decrypt");
    const text = JSON.stringify(error);
    expect(text).not.toContain(FROM_CLI);
    expect(text).not.toContain(t.dataDir);
  });
});

describe("a data dir from before sealing", () => {
  // Served now (both only in the WAL), and the value old-token had before (in the main file).
  const LEGACY = ["legacy-s3cr3t-1d8f-current", "legacy-s3cr3t-77a0-other", "legacy-s3cr3t-c4e2-rotated-away"];

  it("is migrated at start: the function gets the value, and no byte of the old values is left", async () => {
    const dataDir = join(root, "legacy");
    const scratch = join(root, "legacy-scratch");
    await mkdir(dataDir, { recursive: true });
    await mkdir(scratch);
    // The schema and writes of the store before issue 13, with a WAL that still holds values.
    const old = new DatabaseSync(join(scratch, "secrets.db"));
    old.exec("PRAGMA journal_mode = WAL");
    old.exec(
      "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, functions TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT",
    );
    const insert = old.prepare("INSERT INTO secrets (name, value, functions, updated_at) VALUES (?, ?, ?, ?)");
    insert.run("old-token", LEGACY[2] ?? "", '["vault"]', new Date().toISOString());
    old.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    old.prepare("UPDATE secrets SET value = ? WHERE name = 'old-token'").run(LEGACY[0] ?? "");
    insert.run("wal-token", LEGACY[1] ?? "", '"*"', new Date().toISOString());
    // Copied while open: closing the last connection would checkpoint and delete the WAL.
    await copyFile(join(scratch, "secrets.db"), join(dataDir, "secrets.db"));
    await copyFile(join(scratch, "secrets.db-wal"), join(dataDir, "secrets.db-wal"));
    old.close();
    // The test is worth something only if the old values are there to find, the WAL included.
    expect((await rawSearch(dataDir, LEGACY)).sort()).toEqual([
      `secrets.db-wal: ${LEGACY[0]}`,
      `secrets.db-wal: ${LEGACY[1]}`,
      `secrets.db: ${LEGACY[2]}`,
    ]);

    const t = await startTestHost({}, dataDir);
    try {
      expect(t.logs.find((line) => line.secretsKeyFile)).toMatchObject({ generated: true, migrated: 2 });
      const deployed = await deployVault(t, "vault", { A: "secret://old-token", B: "secret://wal-token" });
      expect(deployed.status).toBe(201);
      expect(await envSeen(t, "vault")).toEqual({ A: LEGACY[0], B: LEGACY[1] });
      expect(await rawSearch(dataDir, LEGACY)).toEqual([]);
      const keyFile = `${dataDir}.secrets-key`;
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      // joule secrets reads the same key, from the same default place.
      const list = await joule(["secrets", "list", "--json", "--data-dir", dataDir]);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).secrets.map((s: { name: string }) => s.name)).toEqual(["old-token", "wal-token"]);
    } finally {
      await t.close();
    }
    expect(await rawSearch(dataDir, LEGACY)).toEqual([]);
  });
});

describe("the secrets key file", () => {
  it("must not be open to group or others", async () => {
    const { dataDir, keyFile } = await sealedDataDir("modes");
    for (const mode of [0o640, 0o604, 0o620]) {
      await chmod(keyFile, mode);
      await expect(startOn(dataDir)).rejects.toMatchObject({
        code: "JOULE_ERR_SECRET_STORE_UNUSABLE",
        message: expect.stringContaining(`has mode ${mode.toString(8)}, open to group or others: run \`chmod 600`),
      });
    }
    await chmod(keyFile, 0o400); // read-only for its owner is fine
    const listed = await joule(["secrets", "list", "--data-dir", dataDir]);
    expect(listed.code, listed.stderr).toBe(0);
  });

  it("must hold 32 base64-encoded bytes, and be a file", async () => {
    const { dataDir, keyFile } = await sealedDataDir("length");
    for (const content of [randomBytes(16).toString("base64"), randomBytes(32).toString("hex"), ""]) {
      await writeFile(keyFile, content, { mode: 0o600 });
      await expect(startOn(dataDir)).rejects.toMatchObject({
        code: "JOULE_ERR_SECRET_STORE_UNUSABLE",
        message: expect.stringContaining("does not hold 32 base64-encoded bytes"),
      });
    }
    await rm(keyFile);
    await mkdir(keyFile, { mode: 0o700 });
    await expect(startOn(dataDir)).rejects.toMatchObject({ message: expect.stringContaining("not a regular file") });
  });

  it("must be the key the store was sealed with: another key is refused at start, by the host and the CLI", async () => {
    const { dataDir, keyFile } = await sealedDataDir("wrong-key");
    await writeFile(keyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    await expect(startOn(dataDir)).rejects.toMatchObject({
      code: "JOULE_ERR_SECRET_STORE_UNUSABLE",
      message: expect.stringMatching(/is not the key the 1 secret\(s\) in secrets.db were sealed with/),
    });
    const cli = await joule(["secrets", "list", "--data-dir", dataDir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("error JOULE_ERR_SECRET_STORE_UNUSABLE");
  });

  it("missing while the store holds sealed values is an error, never a new key", async () => {
    const { dataDir, keyFile } = await sealedDataDir("missing");
    await rm(keyFile);
    await expect(startOn(dataDir)).rejects.toMatchObject({
      code: "JOULE_ERR_SECRET_STORE_UNUSABLE",
      message: expect.stringContaining(`holds 1 sealed secret(s) but their key file ${keyFile} is missing`),
    });
    await expect(stat(keyFile)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("is JOULE_SECRETS_KEY_FILE when set: read, never made, and never inside the data dir", async () => {
    const dataDir = join(root, "named");
    const keyFile = join(root, "named-key");
    const env = { JOULE_SECRETS_KEY_FILE: keyFile };
    const missing = await joule(["secrets", "set", "x", "--functions", "*", "--value", "v", "--data-dir", dataDir], {
      env,
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`JOULE_SECRETS_KEY_FILE names ${keyFile}, which does not exist`);
    await writeFile(keyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    const set = await joule(["secrets", "set", "x", "--functions", "*", "--value", "v", "--data-dir", dataDir], {
      env,
    });
    expect(set.code, set.stderr).toBe(0);
    await expect(stat(`${dataDir}.secrets-key`)).rejects.toMatchObject({ code: "ENOENT" });
    // The host with the same setting opens what the CLI sealed; without it, it would look beside the data dir.
    const host = await startOn(dataDir, keyFile);
    await host.close();
    await expect(startOn(dataDir)).rejects.toMatchObject({ message: expect.stringContaining("is missing") });

    const insideKey = join(dataDir, "key");
    await writeFile(insideKey, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    await expect(startOn(dataDir, insideKey)).rejects.toMatchObject({
      code: "JOULE_ERR_SECRET_STORE_UNUSABLE",
      message: expect.stringContaining("is inside the data dir"),
    });
  });

  it("is made once when several first starts race for it", async () => {
    const dataDir = join(root, "race");
    const runs = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        joule(["secrets", "set", `s${i}`, "--functions", "*", "--value", `v${i}`, "--data-dir", dataDir]),
      ),
    );
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    // Each sealed under the one key that won: all four open.
    const host = await startOn(dataDir);
    try {
      for (const i of [0, 1, 2, 3]) expect(host.secrets.get(`s${i}`, "any")).toBe(`v${i}`);
    } finally {
      await host.close();
    }
    expect(runs.filter((run) => run.stdout.includes("made the secrets key"))).toHaveLength(1);
    expect((await readdir(root)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(await readFile(`${dataDir}.secrets-key`, "utf8")).toMatch(BASE64_KEY);
  });
});
