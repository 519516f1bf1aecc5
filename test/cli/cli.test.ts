import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, joule as run } from "../support/cli.ts";
import { startTestHost, type TestHost } from "../support/host.ts";

const joule = (...args: string[]) => run(args);

describe("joule build", () => {
  it("reports a syntax error with the file, line and column", async () => {
    const { code, stderr } = await joule("build", "test/fixtures/broken/syntax");
    expect(code).toBe(1);
    expect(stderr).toContain("error JOULE_ERR_BUILD_SYNTAX");
    expect(stderr).toContain("test/fixtures/broken/syntax/src/index.ts:5:40");
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("reports a missing default export", async () => {
    const { code, stderr } = await joule("build", "test/fixtures/broken/no-default");
    expect(code).toBe(1);
    expect(stderr).toContain(
      "error JOULE_ERR_BUILD_NO_DEFAULT_EXPORT: test/fixtures/broken/no-default/src/index.ts has no default export",
    );
  });

  it("reports top-level code that breaks pre-initialization", async () => {
    const { code, stderr } = await joule("build", "test/fixtures/broken/preinit");
    expect(code).toBe(1);
    expect(stderr).toContain("error JOULE_ERR_BUILD_PREINIT: test/fixtures/broken/preinit/src/index.ts");
    expect(stderr).toContain("move such work into fetch()");
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("reports a top-level throw as the function's, with its message", async () => {
    const { code, stderr } = await joule("build", "test/fixtures/broken/throws");
    expect(code).toBe(1);
    expect(stderr).toContain("error JOULE_ERR_BUILD_PREINIT: test/fixtures/broken/throws/src/index.ts");
    expect(stderr).toContain("init failed: config not found");
  });

  it("reports a manifest that fails validation, naming the field", async () => {
    const { code, stdout } = await joule("build", "test/fixtures/broken/manifest", "--json");
    expect(code).toBe(1);
    const { error } = JSON.parse(stdout);
    expect(error.code).toBe("JOULE_ERR_MANIFEST_INVALID");
    expect(error.details.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^name: /), expect.stringMatching(/^limits\.timeoutMs/)]),
    );
  });

  it("prints machine-readable results with --json, and skips an up-to-date build", async () => {
    const { code, stdout } = await joule("build", "guests/hello", "--json");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      command: "build",
      name: "hello",
      built: false,
      bytes: expect.any(Number),
    });
  });

  it("rejects an unknown command with usage", async () => {
    const { code, stderr } = await joule("frobnicate");
    expect(code).toBe(1);
    expect(stderr).toContain("JOULE_ERR_CLI_USAGE");
    expect(stderr).toContain("joule build <dir>");
  });
});

describe("joule deploy, invoke, list, delete against a running host", () => {
  let t: TestHost;
  let work: string;

  beforeAll(async () => {
    t = await startTestHost();
    // A user's own function, outside the project tree: written, built and deployed from scratch.
    work = await mkdtemp(join(tmpdir(), "joule-cli-"));
    await cp(join(ROOT, "guests/hello"), join(work, "mine"), {
      recursive: true,
      filter: (src) => !src.includes("dist"),
    });
  });
  afterAll(async () => {
    await t?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("deploys a function directory and invokes it", async () => {
    const deployed = await joule(
      "deploy",
      join(work, "mine"),
      "--name",
      "mine",
      "--host",
      t.url,
      "--key",
      t.key,
      "--json",
    );
    expect(deployed.code).toBe(0);
    const record = JSON.parse(deployed.stdout);
    expect(record).toMatchObject({ command: "deploy", name: "mine", built: true, url: `${t.url}/fn/mine/` });
    expect(record.buildMs).toBeGreaterThan(0);

    const invoked = await joule("invoke", "mine", "/x?name=cli", "--host", t.url, "--key", t.key);
    expect(invoked.code).toBe(0);
    expect(JSON.parse(invoked.stdout)).toEqual({ greeting: "Hello from Joule, cli!", path: "/x" });
    expect(invoked.stderr).toMatch(/^200 in /);

    const listed = await joule("list", "--host", t.url, "--key", t.key);
    expect(listed.stdout).toMatch(/^mine\t[0-9a-f]{12}\thttp/m);

    expect((await joule("delete", "mine", "--host", t.url, "--key", t.key)).code).toBe(0);
    const gone = await joule("delete", "mine", "--host", t.url, "--key", t.key);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("JOULE_ERR_FUNCTION_NOT_FOUND");
  });

  it("makes, lists and revokes keys through a host's /v1/keys with --host", async () => {
    const remote = ["--host", t.url, "--key", t.key];
    const made = await joule("keys", "create", "--scopes", "functions:invoke", "--name", "remote", ...remote, "--json");
    expect(made.code, made.stderr).toBe(0);
    const key = JSON.parse(made.stdout);
    expect(key).toMatchObject({ command: "keys create", name: "remote", scopes: ["functions:invoke"] });
    expect(key.key).toMatch(new RegExp(`^jk_${key.id}_`));
    expect((await joule("keys", "list", ...remote)).stdout).toMatch(new RegExp(`^${key.id}\tremote\t`, "m"));
    expect((await joule("keys", "revoke", key.id, ...remote)).code).toBe(0);
    const again = await joule("keys", "revoke", key.id, ...remote);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`no active key ${key.id}`);
  });

  it("says clearly when the host cannot be reached", async () => {
    const { code, stderr } = await joule("list", "--host", "http://127.0.0.1:1");
    expect(code).toBe(1);
    expect(stderr).toContain("error JOULE_ERR_CLI_HOST_UNREACHABLE: cannot reach http://127.0.0.1:1");
  });
});
