/**
 * `joule invoke` as curl users expect it: -X, -H (as often as needed),
 * -d BODY, -d @file and -d @-; a non-zero exit on an error answer, with
 * --json too; an Authorization given with -H reaches the function (Joule's
 * key travels in x-joule-authorization); without a key it says where one
 * goes (JOULE_API_KEY, --key).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule } from "../support/cli.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let work: string;
let remote: string[];
const NO_KEY = { JOULE_API_KEY: "", JOULE_ADMIN_TOKEN: "" };

beforeAll(async () => {
  t = await startTestHost();
  work = await mkdtemp(join(tmpdir(), "joule-invoke-"));
  expect((await t.deploy("echo", { public: true })).status).toBe(201);
  expect((await t.deploy("closed", { component: componentPath("misbehave") })).status).toBe(201);
  remote = ["--host", t.url, "--key", t.key];
});
afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

describe("joule invoke", () => {
  it("sends -X, -H and -d like curl, and a file's exact bytes with -d @file", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await writeFile(join(work, "body.bin"), bytes);
    const sent = await joule([
      "invoke",
      "echo",
      "/",
      "-X",
      "PUT",
      "-H",
      "content-type: application/octet-stream",
      "-d",
      `@${join(work, "body.bin")}`,
      "--json",
      ...remote,
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    const answer = JSON.parse(sent.stdout);
    expect(answer.headers["x-echo-method"]).toBe("PUT");
    expect(answer.headers["x-echo-bytes"]).toBe("256");
    const posted = await joule(["invoke", "echo", "-d", "a=1", "--json", ...remote]);
    expect(JSON.parse(posted.stdout)).toMatchObject({
      status: 200,
      body: "a=1",
      headers: { "x-echo-method": "POST", "content-type": "application/x-www-form-urlencoded" },
    });
    const piped = await joule(["invoke", "echo", "-d", "@-", "-H", "content-type: text/plain", ...remote], {
      input: "from stdin",
    });
    expect(piped.stdout).toBe("from stdin\n");
  });

  it("passes an Authorization given with -H to the function, never Joule's key", async () => {
    const seen = await joule(["invoke", "closed", "/headers", "-H", "Authorization: Bearer the-function-s", ...remote]);
    expect(seen.code, seen.stderr).toBe(0);
    const headers = JSON.parse(seen.stdout);
    expect(headers.authorization).toBe("Bearer the-function-s");
    expect(seen.stdout).not.toContain(t.key);
  });

  it("exits non-zero on an error answer, with and without --json", async () => {
    const plain = await joule(["invoke", "closed", "/throw", ...remote]);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toContain("JOULE_ERR_EXECUTION_FAILED");
    expect(plain.stderr).toMatch(/^502 in /m);
    const json = await joule(["invoke", "closed", "/status?code=404", "--json", ...remote]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).status).toBe(404);
  });

  it("says where a key goes when the host wants one, and which setting held a refused one", async () => {
    const none = await joule(["invoke", "closed", "/", "--host", t.url], { env: NO_KEY });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /JOULE_ERR_REQUEST_UNAUTHORIZED: .* needs an API key: export JOULE_API_KEY=.* or pass --key/,
    );
    const listed = await joule(["list", "--host", t.url], { env: NO_KEY });
    expect(listed.stderr).toMatch(/needs an API key: export JOULE_API_KEY=.* or pass --key/);
    const bad = await joule(["list", "--host", t.url], { env: { ...NO_KEY, JOULE_API_KEY: "jk_bad" } });
    expect(bad.stderr).toMatch(/refused the API key from JOULE_API_KEY/);
  });
});
