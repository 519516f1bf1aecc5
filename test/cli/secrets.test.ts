/**
 * `joule secrets` against a running host (`--host`, as `joule keys` does),
 * and, without one, only in a data dir a host made: run from any other
 * folder it says where to go and leaves nothing behind.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule } from "../support/cli.ts";
import { startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let empty: string;

beforeAll(async () => {
  t = await startTestHost();
  empty = await mkdtemp(join(tmpdir(), "joule-no-data-dir-"));
});
afterAll(async () => {
  await t?.close();
  await rm(empty, { recursive: true, force: true });
});

describe("joule secrets", () => {
  it("sets, lists and deletes secrets of a running host with --host", async () => {
    const remote = ["--host", t.url, "--key", t.key];
    const set = await joule(["secrets", "set", "db-password", "--functions", "api", ...remote], { input: "hunter2\n" });
    expect(set.code, set.stderr).toBe(0);
    expect(t.host.secrets.get("db-password", "api")).toBe("hunter2");
    const listed = await joule(["secrets", "list", ...remote]);
    expect(listed.stdout).toMatch(/^db-password\tapi\t\d{4}-/m);
    expect(listed.stdout).not.toContain("hunter2");
    expect((await joule(["secrets", "delete", "db-password", ...remote])).code).toBe(0);
    const again = await joule(["secrets", "delete", "db-password", ...remote]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("no secret db-password");
  });

  it("refuses to work in a folder that holds no host's data dir, and creates nothing there", async () => {
    for (const command of [
      ["secrets", "list"],
      ["secrets", "set", "x", "--functions", "*", "--value", "v"],
      ["keys", "list"],
    ]) {
      const { code, stderr } = await joule(command, {
        cwd: empty,
        env: { JOULE_DATA_DIR: "", JOULE_SECRETS_KEY_FILE: "" },
      });
      expect(code).toBe(1);
      expect(stderr).toMatch(/no host's data dir at \.joule: .*--data-dir DIR.*--host URL/);
    }
    expect(await readdir(empty)).toEqual([]);
    expect(await readdir(tmpdir())).not.toContain(`${empty.split("/").pop()}.secrets-key`);
  });
});
