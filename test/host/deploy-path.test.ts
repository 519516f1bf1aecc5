/**
 * Deploys that read the host's disk: only the operator credential, only
 * under JOULE_DEPLOY_DIRS, only regular files, never the data dir, one
 * answer for every refusal. Each attempt a tenant with a deploy key made
 * (host files, devices, FIFOs, symlinks out, the data dir) is refused at
 * once while another function keeps answering.
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";

const OPERATOR = "operator-token-for-the-path-tests";
let t: TestHost;
let dirs: string;
let outside: string;

const asOperator = { authorization: `Bearer ${OPERATOR}` };

const byPath = (name: string, body: Record<string, unknown>, headers: Record<string, string> = asOperator) =>
  t.fetch(`/v1/functions/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

/** The answer to a refused path, which must be the same whatever the reason. */
async function refusal(response: Response): Promise<{ status: number; code: string; message: string }> {
  const { error } = await response.json();
  return { status: response.status, code: error.code, message: error.message };
}

beforeAll(async () => {
  dirs = await mkdtemp(join(tmpdir(), "joule-deploy-dirs-"));
  outside = await mkdtemp(join(tmpdir(), "joule-outside-"));
  await cp(componentPath("tiny"), join(dirs, "tiny.wasm"));
  await cp(reachDir(), join(dirs, "reach"), { recursive: true });
  await writeFile(join(outside, "secret.txt"), "not for tenants");
  await symlink(join(outside, "secret.txt"), join(dirs, "escape.wasm"));
  await mkdir(join(dirs, "linked/assets"), { recursive: true });
  await symlink("/etc/passwd", join(dirs, "linked/assets/passwd"));
  execFileSync("mkfifo", [join(dirs, "pipe.wasm")]);
  // A device node inside a listed directory (root can make one): still not a regular file.
  try {
    execFileSync("mknod", [join(dirs, "zero.wasm"), "c", "1", "5"], { stdio: "ignore" });
  } catch {
    await symlink("/dev/zero", join(dirs, "zero.wasm"));
  }
  t = await startTestHost({ adminToken: OPERATOR, deployDirs: dirs });
  expect((await t.deploy("bystander", { component: componentPath("tiny"), public: true })).status).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await rm(dirs, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

describe("deploys by path", () => {
  it("deploy a component and its shipped files for the operator, from a listed directory", async () => {
    const tiny = await byPath("from-disk", { component: { path: join(dirs, "tiny.wasm") } });
    expect(tiny.status, await tiny.clone().text()).toBe(201);
    expect(await (await t.fetch("/fn/from-disk/")).text()).toBe("tiny");
    const reach = await byPath("reach-disk", {
      component: { path: join(dirs, "reach", relative(reachDir(), componentPath("reach"))) },
      functionDir: join(dirs, "reach"),
      capabilities: { kv: ["cache"], outboundHttp: ["http://127.0.0.1:9"], files: { "/config.json": "config.json" } },
    });
    expect(reach.status, await reach.clone().text()).toBe(201);
    const file = await (await t.fetch("/fn/reach-disk/file?path=/config.json")).json();
    expect(file.ok).toBe(true);
  });

  it("are refused to every API key, even one with every scope, and to a key limited to the function", async () => {
    const limited = t.host.keys.create({ name: "tenant", scopes: ["functions:manage"], functions: ["mine"] }).key;
    for (const key of [t.key, limited]) {
      const response = await byPath(
        "mine",
        { component: { path: join(dirs, "tiny.wasm") } },
        {
          authorization: `Bearer ${key}`,
        },
      );
      expect(await refusal(response)).toMatchObject({ status: 403, code: "JOULE_ERR_PERMISSION_DENIED" });
    }
    expect((await t.fetch("/v1/functions/mine")).status).toBe(404);
  });

  it("answer the same for a missing file, a host file, a device, a FIFO, a symlink out and the data dir", async () => {
    const attempts = [
      join(dirs, "missing.wasm"),
      "/etc/shadow",
      "/etc/passwd",
      `/proc/${process.pid}/environ`,
      "/proc/self/environ",
      "/dev/zero",
      join(dirs, "zero.wasm"),
      join(dirs, "pipe.wasm"),
      join(dirs, "escape.wasm"),
      join(dirs, "../", "joule-outside-x", "secret.txt"),
      join(t.dataDir, "auth.db"),
      join(t.dataDir, "secrets.db-wal"),
      join(t.dataDir, "host.lock"),
      "relative/../../etc/passwd",
    ];
    const answers = [];
    for (const path of attempts) {
      const started = performance.now();
      const response = await byPath("stolen", { component: { path } });
      answers.push(await refusal(response));
      // Refused at once: nothing waited on a FIFO or read a device.
      expect(performance.now() - started, path).toBeLessThan(5_000);
      expect(await (await t.anonymous("/fn/bystander/")).text()).toBe("tiny");
    }
    const first = answers[0];
    expect(first).toMatchObject({ status: 400, code: "JOULE_ERR_DEPLOY_SOURCE_NOT_FOUND" });
    for (const answer of answers) expect(answer).toEqual(first);
    expect(first?.message).not.toMatch(/\d+ bytes\)/);
    expect((await t.fetch("/v1/functions/stolen")).status).toBe(404);
  });

  it("refuse a function directory outside the listed ones, or inside the data dir", async () => {
    for (const functionDir of ["/etc", t.dataDir, outside]) {
      const response = await byPath("stolen", {
        component: { path: join(dirs, "tiny.wasm") },
        functionDir,
        capabilities: { files: { "/shadow": "shadow" } },
      });
      expect(await refusal(response), functionDir).toMatchObject({
        status: 400,
        code: "JOULE_ERR_DEPLOY_SOURCE_NOT_FOUND",
      });
    }
  });

  it("refuse shipped files that are symlinks, and sources that leave the function's directory", async () => {
    const linked = await byPath("linked", {
      component: { path: join(dirs, "tiny.wasm") },
      functionDir: join(dirs, "linked"),
      capabilities: { files: { "/data/": "assets/" } },
    });
    expect(linked.status).toBe(400);
    expect((await linked.json()).error).toMatchObject({
      code: "JOULE_ERR_MANIFEST_INVALID",
      message: expect.stringContaining("/data/passwd is a symlink"),
    });
  });

  it("refuse an invalid deploy body, naming every bad field", async () => {
    const response = await byPath("bad", {
      component: {},
      env: { "1BAD": 3 },
      limits: { timeoutMs: -1, unknown: true },
      extra: 1,
    });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.code).toBe("JOULE_ERR_MANIFEST_INVALID");
    expect(error.details.problems.join("\n")).toEqual(expect.stringContaining("component.path"));
    for (const path of ["env.1BAD", "limits.timeoutMs", "limits", "(root)"]) {
      expect(error.details.problems.some((p: string) => p.startsWith(path))).toBe(true);
    }
  });
});

describe("without JOULE_DEPLOY_DIRS", () => {
  it("no deploy reads the host's disk, not even the operator's", async () => {
    const plain = await startTestHost({ adminToken: OPERATOR });
    try {
      const response = await plain.fetch("/v1/functions/tiny", {
        method: "PUT",
        headers: { "content-type": "application/json", ...asOperator },
        body: JSON.stringify({ component: { path: componentPath("tiny") } }),
      });
      expect(await refusal(response)).toMatchObject({ status: 403, code: "JOULE_ERR_PERMISSION_DENIED" });
    } finally {
      await plain.close();
    }
  });
});
