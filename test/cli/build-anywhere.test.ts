/**
 * `joule build` works from any directory: a function in `~/code/joule-fns`
 * built from `~/code/joule` (a string prefix of its path, which
 * componentize-js once took for a parent), or from `/`; and the bundle does
 * not depend on where the build was started, so a build from elsewhere
 * finds the function up to date.
 */
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule, ROOT } from "../support/cli.ts";

let work: string;
let fn: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "joule-anywhere-"));
  await mkdir(join(work, "code/joule"), { recursive: true });
  fn = join(work, "code/joule-fns/hello");
  await cp(join(ROOT, "guests/hello"), fn, { recursive: true, filter: (src) => !src.includes("dist") });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const build = async (cwd: string, ...extra: string[]) => {
  const result = await joule(["build", fn, "--json", ...extra], { cwd });
  if (result.code !== 0) throw new Error(`build from ${cwd} failed:\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout) as { built: boolean; bytes: number };
};

describe("joule build from anywhere", () => {
  it("builds a function whose path has the working directory as a string prefix, and from /", async () => {
    expect((await build(join(work, "code/joule"))).built).toBe(true);
    const bundle = await readFile(join(fn, "dist/bundle.js"), "utf8");
    expect((await build("/", "--force")).built).toBe(true);
    expect(await readFile(join(fn, "dist/bundle.js"), "utf8")).toBe(bundle);
    expect((await build(ROOT)).built).toBe(false);
  });
});
