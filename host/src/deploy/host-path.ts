/**
 * Reading a file of the host's own disk for a deploy, the one way it is
 * done: only under the directories the operator listed (JOULE_DEPLOY_DIRS),
 * only regular files (no devices such as /dev/zero, no FIFOs that would
 * block a thread until someone writes, no sockets), no symlink out of the
 * directory, and never more than a bound. Whatever of this fails, the
 * caller gets one answer (`undefined`), so a refusal tells nothing about
 * which files exist or how large they are.
 */
import { constants } from "node:fs";
import { type FileHandle, open, readlink, realpath } from "node:fs/promises";
import { resolve, sep } from "node:path";

/** `path`'s real location if it lies under one of `roots` (symlinks resolved); undefined otherwise. */
export async function underRoots(roots: readonly string[], path: string): Promise<string | undefined> {
  const real = await realpath(resolve(path)).catch(() => undefined);
  if (real === undefined) return undefined;
  for (const root of roots) {
    const realRoot = await realpath(root).catch(() => undefined);
    if (realRoot === undefined) continue;
    if (real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : `${realRoot}${sep}`)) return real;
  }
  return undefined;
}

/**
 * The bytes of the regular file at `path`, at most `maxBytes`; undefined if
 * it is missing, not a regular file, reached through a symlink at its last
 * step, larger, or (with `allowed`) not where it may be once opened.
 * O_NONBLOCK makes opening a FIFO return at once instead of waiting for a
 * writer; the type and the place are then checked on the open descriptor,
 * so nothing can be swapped between the check and the read.
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  allowed?: (opened: string) => Promise<boolean>,
): Promise<Uint8Array | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > maxBytes) return undefined;
    if (allowed && !(await allowed((await descriptorPath(handle)) ?? path))) return undefined;
    // The size may change while reading: read at most one byte past the bound to notice.
    const buffer = Buffer.allocUnsafe(Math.min(info.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.byteLength - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) return undefined;
      if (length === buffer.byteLength) break;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  } finally {
    await handle.close();
  }
}

/** A file under `roots`, read as readRegularFile does: checked before opening and again on the descriptor. */
export async function readUnderRoots(
  roots: readonly string[],
  path: string,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  const real = await underRoots(roots, path);
  if (real === undefined) return undefined;
  return readRegularFile(real, maxBytes, async (opened) => (await underRoots(roots, opened)) === opened);
}

/** Where an open descriptor's file is, when the OS says (Linux /proc); undefined elsewhere. */
async function descriptorPath(handle: FileHandle): Promise<string | undefined> {
  return readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
}
