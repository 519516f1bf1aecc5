/**
 * Crash-safe writes: everything is written under `<dataDir>/tmp` first and
 * renamed into place, so a reader (or a restarted host) sees a file or a
 * directory whole or not at all. A write that fails (a full disk) removes
 * what it wrote, so that the space comes back with the next deploy instead
 * of the next start.
 */
import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/**
 * `mkdir -p` that says why it failed: Node's recursive mkdir answers ENOENT
 * when the file system is read-only (it stats the path after EROFS), which
 * would read as a missing file, not as the disk's fault.
 */
export async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    // The real reason (EROFS), or ENOENT again when a parent is missing for real.
    await mkdir(path);
  }
}

export async function writeAtomic(tmpDir: string, target: string, data: Uint8Array | string): Promise<void> {
  const temp = join(tmpDir, randomUUID());
  try {
    await writeFile(temp, data);
    await makeDir(dirname(target));
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** Moves a fully written staging directory into place; if another writer won the race, keeps theirs. */
export async function renameDirAtomic(staging: string, target: string): Promise<void> {
  await makeDir(dirname(target));
  try {
    await rename(staging, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    await rm(staging, { recursive: true, force: true });
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
  }
}
