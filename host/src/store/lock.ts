/**
 * One host per data dir: two would wipe each other's staging area at start
 * and race on the same records. The lock is a file holding the owner's pid,
 * created exclusively; a lock whose process is gone is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the data dir's lock, or throws naming the process that holds it. Returns the release. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "host.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(readFileSync(path, "utf8").trim());
      if (!Number.isInteger(owner) || !alive(owner)) {
        rmSync(path, { force: true }); // stale: its host is gone
        continue;
      }
      throw new DataDirLockedError(
        `${dataDir} is in use by another Joule host (pid ${owner}); give each host its own JOULE_DATA_DIR`,
      );
    }
  }
  throw new DataDirLockedError(`could not lock ${dataDir}`);
}
