/**
 * A real `joule serve`, as a child process, whose data dir is a small file
 * system of its own inside a private mount namespace, so that tests can fill
 * it, make it read-only or make its files immutable for real without
 * touching the machine's disks. Needs root (unshare, mount); `faultSkip()`
 * says why it cannot run, and suites skip saying so.
 *
 * The data dir is a directory made in the test machine's temp dir; the
 * mount over it exists only in the child's namespace, which dies with it.
 * Faults are made inside that namespace with `nsenter -t <pid> -m`.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./cli.ts";

let skip: string | undefined;

/** Why faults cannot be made here, or "" when they can. */
export function faultSkip(): string {
  if (skip !== undefined) return skip;
  if (process.getuid?.() !== 0) skip = "not root: mount namespaces and tmpfs mounts need it";
  else {
    const probe = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt"], {
      encoding: "utf8",
    });
    skip = probe.status === 0 ? "" : `unshare -m / mount fail here: ${(probe.stderr || probe.error?.message) ?? ""}`;
  }
  return skip;
}

let ext4: string | undefined;

/**
 * Shell lines that mount an ext4 file system on "$DIR", from an image kept
 * on a tmpfs of its own there (a loop device; nothing of the machine's
 * disks). ext4, unlike tmpfs, refuses writes to mapped pages it cannot back
 * (an immutable file, an I/O error) with SIGBUS.
 */
export const EXT4_MOUNT =
  'mount -t tmpfs -o size=96m joule-fault "$DIR"; truncate -s 64m "$DIR/ext4.img"; mkfs.ext4 -q -F "$DIR/ext4.img"; mount -o loop "$DIR/ext4.img" "$DIR"';

/** Why an ext4 data dir cannot be made here, or "" when it can. */
export function ext4Skip(): string {
  if (ext4 !== undefined) return ext4;
  ext4 = faultSkip();
  if (!ext4) {
    const probe = spawnSync(
      "unshare",
      [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `set -e; DIR=/mnt; ${EXT4_MOUNT}; chattr +i "$DIR"; chattr -i "$DIR"`,
      ],
      { encoding: "utf8" },
    );
    ext4 = probe.status === 0 ? "" : `an ext4 loop mount fails here: ${(probe.stderr || probe.error?.message) ?? ""}`;
  }
  return ext4;
}

export interface FaultHostOptions {
  /** Shell commands (run in the namespace) that mount a file system on "$DIR". Default: a tmpfs of `sizeMb`. */
  mount?: string;
  sizeMb?: number;
  workers?: number;
}

export interface FaultHost {
  pid: number;
  url: string;
  key: string;
  dataDir: string;
  /** The host's JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  /** Whether the process is gone, and how. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** fetch with the bootstrap key unless `init` sets its own authorization. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  anonymous(path: string, init?: RequestInit): Promise<Response>;
  /** Deploys by multipart upload, as `joule deploy` does: the component, its config, shipped files. */
  deploy(
    name: string,
    component: string,
    config: Record<string, unknown>,
    files?: Record<string, string>,
  ): Promise<Response>;
  /** Runs a shell command in the host's mount namespace, with DIR set to the data dir. */
  sh(script: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Fills the data dir's file system to the last page. */
  fill(): Promise<void>;
  /** Removes what `fill` wrote. */
  unfill(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultHost(options: FaultHostOptions = {}): Promise<FaultHost> {
  const dataDir = await mkdtemp(join(tmpdir(), "joule-fault-"));
  const mount = options.mount ?? `mount -t tmpfs -o size=${options.sizeMb ?? 48}m joule-fault "$DIR"`;
  const child: ChildProcess = spawn(
    "unshare",
    [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      `set -e; DIR="$1"; shift; ${mount}; exec "$@"`,
      "sh",
      dataDir,
      process.execPath,
      join(ROOT, "host/bin/joule.js"),
      "serve",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      "--no-examples",
    ],
    {
      cwd: ROOT,
      // A clean environment: unknown JOULE_* variables stop the host.
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/root",
        LOG_LEVEL: "info",
        JOULE_WORKERS: String(options.workers ?? 2),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    err += chunk;
  });
  const exited = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const started = Date.now();
  while (!/serving on http/.test(out)) {
    if (exit || Date.now() - started > 30_000) {
      child.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
      throw new Error(`joule serve did not start (${JSON.stringify(exit)}):\n${out}\n${err}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const key = (/JOULE_API_KEY=(jk_\S+)/.exec(out) as RegExpExecArray)[1] as string;
  const url = (/serving on (http:\/\/\S+)/.exec(out) as RegExpExecArray)[1] as string;
  const pid = child.pid as number;

  const sh = (script: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        "nsenter",
        ["-t", String(pid), "-m", "sh", "-c", script],
        { env: { ...process.env, DIR: dataDir } },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const fetchWith = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${key}`);
    return fetch(new URL(path, url), { ...init, headers });
  };
  return {
    pid,
    url,
    key,
    dataDir,
    logs: () =>
      out
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exited: () => exit,
    fetch: fetchWith,
    anonymous: (path, init) => fetch(new URL(path, url), init),
    async deploy(name, component, config, files = {}) {
      const form = new FormData();
      form.set("config", JSON.stringify(config));
      form.set("component", new Blob([await readFile(component)]), "component.wasm");
      for (const [guestPath, source] of Object.entries(files))
        form.append(`file:${guestPath}`, new Blob([await readFile(source)]), "file");
      return fetchWith(`/v1/functions/${name}`, { method: "PUT", body: form });
    },
    sh,
    async fill() {
      // dd stops at ENOSPC (exit 1), with the file system full to the last page.
      const result = await sh('dd if=/dev/zero of="$DIR/fill" bs=64k 2>&1; sync');
      if (!/No space left on device/.test(result.stdout)) throw new Error(`could not fill: ${result.stdout}`);
    },
    async unfill() {
      await sh('rm -f "$DIR/fill"');
    },
    async close() {
      if (!exit) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
