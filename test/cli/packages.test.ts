/**
 * Starting outside this repository (issue 16, item 1). The SDK, the CLI and
 * create-joule are packed as tarballs (scripts/pack.ts) and installed, with
 * `npm install --offline` from the cache the project's own install filled,
 * into a function folder in a temporary directory that `joule init` made:
 * there, with the machine's own Node first on PATH, `npx joule` runs on Node
 * 24 without warnings, `npm test` runs the scaffolded test without a host,
 * `tsc` passes, and the function builds, deploys and answers. Every
 * template typechecks and passes its test.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEMPLATES } from "../../host/src/cli/init/templates.ts";
import { joule, ROOT } from "../support/cli.ts";
import { startTestHost, type TestHost } from "../support/host.ts";

let work: string;

/** PATH without the project's node_modules/.bin: the machine's own Node and npm come first. */
const MACHINE_PATH = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((dir) => !dir.includes("node_modules"))
  .join(delimiter);
const machineNpm = MACHINE_PATH.split(delimiter).some((dir) => existsSync(join(dir, "npm")));

/** A command in `cwd` as a user's shell runs it: the machine's PATH, no npm settings of the test's own run. */
function sh(cwd: string, command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("npm_") && !key.startsWith("JOULE_") && key !== "NODE") env[key] = value;
  }
  env.PATH = MACHINE_PATH;
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "joule-packages-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("joule init templates", () => {
  it("each scaffolds a function whose tsc passes and whose test passes without a host", async () => {
    for (const template of TEMPLATES) {
      const dir = join(work, "templates", `${template}-fn`);
      const made = await joule(["init", dir, "--template", template, "--json"]);
      expect(made.code, made.stderr).toBe(0);
      expect(JSON.parse(made.stdout).files).toEqual(
        expect.arrayContaining(["joule.json", "src/index.ts", "src/index.test.ts", "package.json", "tsconfig.json"]),
      );
      if (template === "scheduled" || template === "events") expect(made.stderr).toMatch(/^warning: Joule .* yet/m);
      // The project's own packages stand in for an install: the same SDK, typescript, @types/node and hono.
      await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
      const tsc = await new Promise<{ code: number; out: string }>((resolve) =>
        execFile(join(ROOT, "node_modules/.bin/tsc"), ["--noEmit", "-p", dir], (error, stdout) =>
          resolve({ code: error ? 1 : 0, out: stdout }),
        ),
      );
      expect(tsc, `${template}: tsc`).toEqual({ code: 0, out: "" });
      const tested = await new Promise<{ code: number; out: string }>((resolve) =>
        execFile(process.execPath, ["--test", "src/index.test.ts"], { cwd: dir }, (error, stdout, stderr) =>
          resolve({ code: error ? 1 : 0, out: stdout + stderr }),
        ),
      );
      expect(tested.code, `${template}: node --test\n${tested.out}`).toBe(0);
    }
  });

  it("typechecks before building with joule build --typecheck, naming the line", async () => {
    const dir = join(work, "templates", "http-fn");
    await writeFile(join(dir, "src/broken.ts"), 'export const n: number = "not a number";\n');
    const { code, stderr } = await joule(["build", dir, "--typecheck"], { cwd: work });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /error JOULE_ERR_BUILD_TYPECHECK: templates\/http-fn does not typecheck:\n.*src\/broken\.ts\(1,14\): error TS2322/,
    );
    await rm(join(dir, "src/broken.ts"));
  });

  it("refuses a folder that is not empty, and a name that is not a function name", async () => {
    const taken = await joule(["init", join(work, "templates", "http-fn")]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/exists and is not empty/);
    const badName = await joule(["init", join(work, "Bad_Name")]);
    expect(badName.stderr).toMatch(/Bad_Name is not a function name/);
  });
});

describe.skipIf(!machineNpm)("the packed CLI and SDK in a folder outside the repository", () => {
  let t: TestHost;
  let packs: { sdk: string; cli: string; create: string };
  let fn: string;

  beforeAll(async () => {
    t = await startTestHost();
    const out = execFileSync(process.execPath, [join(ROOT, "scripts/pack.ts"), join(work, "packs")], {
      encoding: "utf8",
    });
    packs = JSON.parse(out.trim().split("\n").pop() as string);
    fn = join(work, "app", "my-fn");
    expect((await joule(["init", fn, "--template", "http"])).code).toBe(0);
    const installed = await sh(fn, "npm", ["install", "--offline", "--no-audit", "--no-fund", packs.cli, packs.sdk]);
    expect(installed.code, installed.stderr).toBe(0);
  }, 600_000);
  afterAll(() => t?.close());

  it("runs npx joule on Node 24 whatever Node the machine has, without warnings", async () => {
    const inFolder = await sh(fn, "npx", ["node", "--version"]);
    expect(inFolder.stdout.trim()).toBe("v24.21.0");
    const help = await sh(fn, "npx", ["joule", "help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^joule — WebAssembly functions/);
    expect(help.stderr).toBe("");
  });

  it("tests the handler without a host (npm test) and typechecks (tsc)", async () => {
    const tested = await sh(fn, "npm", ["test"]);
    expect(tested.code, tested.stdout + tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/pass 2/);
    const tsc = await sh(fn, "npx", ["tsc", "--noEmit"]);
    expect(tsc.code, tsc.stdout).toBe(0);
  });

  it("builds, deploys and answers", async () => {
    const deployed = await sh(fn, "npx", ["joule", "deploy", ".", "--host", t.url, "--key", t.key, "--json"]);
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    expect(JSON.parse(deployed.stdout)).toMatchObject({ name: "my-fn", built: true });
    const answer = await t.anonymous("/fn/my-fn/hi?name=there");
    expect(await answer.json()).toEqual({ greeting: "Hello, there!", path: "/hi" });
  });

  it("scaffolds with the packed CLI and with npm create joule, pinned to the packed versions", async () => {
    const hono = await sh(fn, "npx", ["joule", "init", "../hono-fn", "--template", "hono"]);
    expect(hono.code, hono.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(work, "app/hono-fn/package.json"), "utf8"));
    expect(manifest.dependencies).toMatchObject({ "@joule/sdk": "^0.1.0", hono: "^4.13.19" });
    expect(manifest.devDependencies).toMatchObject({ "@joule/cli": "^0.1.0", node: "24.21.0" });
    const lock = JSON.parse(await readFile(join(work, "app/hono-fn/package-lock.json"), "utf8"));
    expect(lock.packages["node_modules/hono"].version).toBe("4.13.19");
    expect(lock.packages["node_modules/fastify"]).toBeDefined();
    // npm create joule runs create-joule; installed here, npm takes the local one (the tarball).
    const added = await sh(fn, "npm", ["install", "--offline", "--no-save", "--no-audit", "--no-fund", packs.create]);
    expect(added.code, added.stderr).toBe(0);
    const created = await sh(fn, "npm", ["create", "--offline", "joule", "../events-fn", "--", "--template", "events"]);
    expect(created.code, created.stdout + created.stderr).toBe(0);
    expect(created.stderr).toMatch(/Joule does not deliver events yet/);
    expect(await readFile(join(work, "app/events-fn/src/index.ts"), "utf8")).toMatch(/CloudEvents 1\.0/);
  });
});
