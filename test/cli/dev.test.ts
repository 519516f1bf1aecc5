/**
 * `joule dev`: a host with the function deployed, a new version answering
 * after a save, a broken save reported in place while the last good version
 * keeps answering, and nothing left of the temporary data dir at the end.
 * Prints the save-to-new-response time it measured.
 */
import { cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, type RunningJoule, startJoule } from "../support/cli.ts";

let work: string;
let fn: string;
let dev: RunningJoule;
let url: string;

const greeting = async () => ((await (await fetch(`${url}?name=dev`)).json()) as { greeting: string }).greeting;

async function until(check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms; joule dev said:\n${dev.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "joule-dev-test-"));
  fn = join(work, "hello");
  await cp(join(ROOT, "guests/hello"), fn, { recursive: true, filter: (src) => !src.includes("dist") });
  dev = startJoule(["dev", fn, "--port", "0"], { cwd: work, env: { JOULE_WORKERS: "1" } });
  url = (await dev.waitFor(/✓ deployed: hello [0-9a-f]{12} .*→ (http:\/\/127\.0\.0\.1:\d+\/fn\/hello\/)/))[1] as string;
});
afterAll(async () => {
  await dev?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("joule dev", () => {
  it("answers with the function, and with its new version after a save", async () => {
    expect(await greeting()).toBe("Hello from Joule, dev!");
    const source = join(fn, "src/index.ts");
    const saved = Date.now();
    await writeFile(source, (await readFile(source, "utf8")).replace("name}!`", "name}?`"));
    await until(async () => (await greeting()) === "Hello from Joule, dev?");
    console.log(`joule dev: save to new response in ${Date.now() - saved} ms`);
    expect(dev.output()).toMatch(/✓ reload \(src\/index\.ts\): hello [0-9a-f]{12} in .*build .*componentize .*deploy/);
  }, 180_000);

  it("reports a broken save in place and keeps the last good version answering", async () => {
    const source = join(fn, "src/index.ts");
    const good = await readFile(source, "utf8");
    await writeFile(source, `${good}\nexport const broken = (;\n`);
    await dev.waitFor(/✗ reload \(src\/index\.ts\) failed: error JOULE_ERR_BUILD_SYNTAX: .*index\.ts does not compile/);
    expect(await greeting()).toBe("Hello from Joule, dev?");
    await writeFile(source, good.replace("name}?`", "name}!!`"));
    await until(async () => (await greeting()) === "Hello from Joule, dev!!");
  }, 180_000);

  it("shows the function's own log lines", async () => {
    await fetch(`${url}logged`);
    await dev.waitFor(/ {2}hello stdout: hello \/logged|hello info: hello \/logged/);
  });

  it("removes its temporary data dir when stopped", async () => {
    const dataDir = (dev.output().match(/data dir (\S+)\)/) as RegExpMatchArray)[1] as string;
    expect((await stat(dataDir)).isDirectory()).toBe(true);
    expect(await dev.stop()).toBe(0);
    await expect(stat(dataDir)).rejects.toThrow(/ENOENT/);
  });
});
