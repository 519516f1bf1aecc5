/**
 * One host per data dir: two would wipe each other's staging area at start
 * and race on the same records. The lock is a file, created exclusively,
 * naming its owner: pid, the process's start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot) and the boot id.
 *
 * A pid alone cannot tell a live owner from a crashed one whose pid came
 * back: in a container the host is pid 1 again after every restart, and
 * any pid is reused in time. So a lock is stale, and taken over, when the
 * machine booted since it was written, when its pid is not running or
 * runs a process that started at another time, or when it names this very
 * process (which holds no lock on the dir: those are in `held`). Where
 * /proc cannot be read, only the pid is compared, as before. The lock
 * only guards against mistakes: two hosts started within the same
 * moment on a dir with a stale lock could both take it over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

/** Who holds a lock, as written in it. */
export interface LockOwner {
  pid: number;
  /** Field 22 of /proc/<pid>/stat; null where /proc cannot tell. */
  startTime: string | null;
  bootId: string | null;
}

/** Data dirs this process holds (resolved paths): a second host here is refused without reading the file. */
const held = new Set<string>();

function readOr(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

/** The start time of process `pid`, or null when it is not running or /proc cannot say. */
export function startTimeOf(pid: number): string | null {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[22 - 3] ?? null;
}

export function bootId(): string | null {
  return readOr("/proc/sys/kernel/random/boot_id");
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, startTime: startTimeOf(process.pid), bootId: bootId() };
}

/** A lock's content: JSON, or a bare pid as earlier versions wrote it. Null when it is neither. */
export function parseOwner(text: string): LockOwner | null {
  if (/^\d+$/.test(text)) return { pid: Number(text), startTime: null, bootId: null };
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isInteger(value.pid) || (value.pid as number) <= 0) return null;
    return {
      pid: value.pid as number,
      startTime: typeof value.startTime === "string" ? value.startTime : null,
      bootId: typeof value.bootId === "string" ? value.bootId : null,
    };
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why the lock's owner cannot be holding it any more; undefined when it may be. */
export function staleBecause(owner: LockOwner | null): string | undefined {
  if (owner === null) return "it names no owner (a start that died while writing it)";
  if (owner.pid === process.pid) return "it names this process, which holds no lock on the dir";
  const boot = bootId();
  if (owner.bootId && boot && owner.bootId !== boot) return "the machine has booted since";
  if (!alive(owner.pid)) return `process ${owner.pid} is not running`;
  const started = startTimeOf(owner.pid);
  if (owner.startTime && started && owner.startTime !== started)
    return `process ${owner.pid} is another process than the one that wrote it`;
  return undefined;
}

/** Takes the data dir's lock, or throws naming the process that holds it. Returns the release. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const dir = resolve(dataDir);
  if (held.has(dir)) {
    throw new DataDirLockedError(
      `${dataDir} is in use by another Joule host (pid ${process.pid}) in this process; give each host its own JOULE_DATA_DIR`,
    );
  }
  const path = join(dir, "host.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = parseOwner(readOr(path) ?? "");
      if (staleBecause(owner) !== undefined) {
        rmSync(path, { force: true });
        continue;
      }
      throw new DataDirLockedError(
        `${dataDir} is in use by another Joule host (pid ${owner?.pid}); give each host its own JOULE_DATA_DIR`,
      );
    }
    try {
      writeSync(fd, JSON.stringify(currentOwner()));
    } catch (error) {
      // A full disk: no half-written lock is left behind to refuse the next start.
      closeSync(fd);
      rmSync(path, { force: true });
      throw error;
    }
    closeSync(fd);
    held.add(dir);
    return () => {
      held.delete(dir);
      try {
        rmSync(path, { force: true });
      } catch {
        // A read-only or failing data dir: the next start finds the lock stale (another process).
      }
    };
  }
  throw new DataDirLockedError(`could not lock ${dataDir}`);
}
