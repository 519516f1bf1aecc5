/**
 * Crash-safe writes: everything is written under `<dataDir>/tmp` first and
 * renamed into place, so a reader (or a restarted host) sees a file or a
 * directory whole or not at all.
 */
import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export async function writeAtomic(tmpDir: string, target: string, data: Uint8Array | string): Promise<void> {
  const temp = join(tmpDir, randomUUID());
  await writeFile(temp, data);
  await mkdir(dirname(target), { recursive: true });
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Moves a fully written staging directory into place; if another writer won the race, keeps theirs. */
export async function renameDirAtomic(staging: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  try {
    await rename(staging, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    await rm(staging, { recursive: true, force: true });
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
  }
}
