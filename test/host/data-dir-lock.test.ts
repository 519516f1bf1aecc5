/**
 * One host per data dir, and a lock left by a crash never blocks a restart:
 * a lock naming a pid that runs another process (pid 1, as in a container
 * restarted; this very process) or written before a reboot is taken over;
 * one held by a live host is refused, naming it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bootId, lockDataDir, startTimeOf } from "../../host/src/store/lock.ts";
import { joule, ROOT } from "../support/cli.ts";

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function dataDirWithLock(owner: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "joule-lock-"));
  dirs.push(dir);
  await writeFile(join(dir, "host.lock"), typeof owner === "string" ? owner : JSON.stringify(owner));
  return dir;
}

/** Takes the lock, checks it now names this process as it runs, releases it. */
async function takesOver(dir: string): Promise<void> {
  const release = lockDataDir(dir);
  expect(JSON.parse(await readFile(join(dir, "host.lock"), "utf8"))).toEqual({
    pid: process.pid,
    startTime: startTimeOf(process.pid),
    bootId: bootId(),
  });
  release();
}

const pid1 = startTimeOf(1);

describe("the data dir's lock", () => {
  it.skipIf(pid1 === null)("takes over a lock naming pid 1 when pid 1 started at another time", async () => {
    await takesOver(await dataDirWithLock({ pid: 1, startTime: String(Number(pid1) + 1000), bootId: bootId() }));
  });

  it("takes over a lock naming this process, which holds none", async () => {
    const other = String(Number(startTimeOf(process.pid) ?? 0) + 1);
    await takesOver(await dataDirWithLock({ pid: process.pid, startTime: other, bootId: bootId() }));
    // Even with the right start time: this process did not write it, or it would hold the dir.
    await takesOver(await dataDirWithLock({ pid: process.pid, startTime: startTimeOf(process.pid), bootId: bootId() }));
  });

  it("takes over a lock written before the machine booted, and one a full disk left empty", async () => {
    await takesOver(await dataDirWithLock({ pid: 1, startTime: pid1, bootId: "an-earlier-boot" }));
    await takesOver(await dataDirWithLock(""));
  });

  it("refuses a second host in this process", async () => {
    const dir = await dataDirWithLock("");
    const release = lockDataDir(dir);
    try {
      expect(() => lockDataDir(dir)).toThrow(/in use by another Joule host \(pid \d+\) in this process/);
    } finally {
      release();
    }
  });

  it("refuses a data dir a live host holds, naming its pid", async () => {
    const dir = await mkdtemp(join(tmpdir(), "joule-lock-"));
    dirs.push(dir);
    const args = ["serve", "--port", "0", "--data-dir", dir, "--no-examples"];
    const first = spawn(process.execPath, [join(ROOT, "host/bin/joule.js"), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", JOULE_WORKERS: "1", LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(first);
    let out = "";
    first.stdout?.on("data", (chunk) => {
      out += chunk;
    });
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (/serving on/.test(out)) resolve();
        else if (first.exitCode !== null) reject(new Error(`the first host exited:\n${out}`));
        else return;
        clearInterval(check);
      }, 20);
    });
    const held = new RegExp(`in use by another Joule host \\(pid ${first.pid}\\)`);
    // A second real host is refused, and so is a start in this process.
    const second = await joule(args, { env: { JOULE_WORKERS: "1" } });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(held);
    expect(() => lockDataDir(dir)).toThrow(held);
  });
});
