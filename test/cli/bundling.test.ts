/**
 * The libraries people use bundle (issue 16, item 7): packages' `worker`
 * and `browser` export conditions and the `browser` field are honoured,
 * nanoid works (it failed on `crypto`), `node:crypto` is Web Crypto under
 * Node's names; a package that needs what a function lacks fails the build
 * naming the package and the import; top-level clock reads warn, naming
 * the line.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule, ROOT } from "../support/cli.ts";
import { startTestHost, type TestHost } from "../support/host.ts";

let work: string;
let t: TestHost;

/** A function in `work/<name>` with the fixture packages (and nanoid) in its node_modules. */
async function functionWith(name: string, source: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, "src"), { recursive: true });
  await writeFile(join(dir, "joule.json"), JSON.stringify({ name, public: true }));
  await writeFile(join(dir, "src/index.ts"), source);
  await cp(join(ROOT, "test/fixtures/packages"), join(dir, "node_modules"), { recursive: true });
  await cp(join(ROOT, "node_modules/nanoid"), join(dir, "node_modules/nanoid"), { recursive: true });
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "joule-bundling-"));
  t = await startTestHost();
});
afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

describe("bundling packages", () => {
  it("uses packages' Web builds and node:crypto as Web Crypto, and warns of a top-level Date.now()", async () => {
    const dir = join(work, "bundling");
    await cp(join(ROOT, "test/fixtures/guests/bundling"), dir, { recursive: true, filter: (s) => !s.includes("dist") });
    await cp(join(ROOT, "test/fixtures/packages"), join(dir, "node_modules"), { recursive: true });
    await cp(join(ROOT, "node_modules/nanoid"), join(dir, "node_modules/nanoid"), { recursive: true });
    const built = await joule(["build", dir, "--json"], { cwd: work });
    expect(built.code, built.stdout + built.stderr).toBe(0);
    expect(JSON.parse(built.stdout).warnings).toEqual([
      expect.stringMatching(/^bundling\/src\/index\.ts:16:\d+: top-level code called Date\.now\(\) at build time/),
    ]);
    expect(built.stderr).toMatch(/^warning: bundling\/src\/index\.ts:16:\d+: .*read the clock inside fetch\(\)/m);
    const deployed = await joule(["deploy", dir, "--host", t.url, "--key", t.key, "--json"], { cwd: work });
    expect(deployed.code, deployed.stderr).toBe(0);
    const answer = await (await t.anonymous("/fn/bundling/")).json();
    expect(answer).toMatchObject({ condition: "worker", browserField: "browser", bytes: 8 });
    expect(answer.id).toMatch(/^[A-Za-z0-9_-]{21}$/);
    expect(answer.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("names the package and the built-in it needs when a function cannot have it", async () => {
    const dir = await functionWith(
      "fs-user",
      'import { read } from "needs-fs";\nexport default { fetch: () => new Response(read("/etc/hostname")) };\n',
    );
    const { code, stderr } = await joule(["build", dir], { cwd: work });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /error JOULE_ERR_BUILD_UNSUPPORTED_MODULE: fs-user\/src\/index\.ts imports what cannot work in a function:\nfs-user\/node_modules\/needs-fs\/index\.js:1:\d+: the package needs-fs imports "node:fs", a Node.js built-in/,
    );
  });

  it("names the import a package wants of node:crypto beyond Web Crypto", async () => {
    const dir = await functionWith(
      "hash-user",
      'import { sha } from "needs-hash";\nexport default { fetch: () => new Response(sha("x")) };\n',
    );
    const { code, stderr } = await joule(["build", dir], { cwd: work });
    expect(code).toBe(1);
    expect(stderr).toMatch(/JOULE_ERR_BUILD_UNSUPPORTED_MODULE/);
    expect(stderr).toMatch(/the package needs-hash imports createHash from "node:crypto", which functions do not have/);
  });
});
