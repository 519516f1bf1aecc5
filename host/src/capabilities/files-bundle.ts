/**
 * The bundle of `capabilities.files` at deploy: the files a function ships,
 * gathered from its directory (by the CLI, or by the host for a deploy from
 * a path) and checked against its mounts when the host receives them.
 *
 * A bundle is a list of {path, digest, size}, sorted by path, each file
 * stored once as a content-addressed blob beside the component; in the
 * function's OCI artifact each file is a layer (oci/artifact.ts).
 * Symlinks (anywhere on a source's path or inside a mounted directory) and
 * anything that is not a regular file are refused, so a bundle cannot point
 * outside the function's directory.
 */
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { readRegularFile, underRoots } from "../deploy/host-path.ts";
import { JouleError } from "../errors.ts";
import { checkGuestPath, underMount } from "./files-paths.ts";

export const MAX_FILES = 1000;
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** Multipart field name prefix of a shipped file in a deploy upload: `file:/data/a.json`. */
export const FILE_FIELD = "file:";

export interface ShippedFile {
  path: string;
  bytes: Uint8Array;
}

/** The order files are recorded and packaged in: by path, code unit by code unit. */
export function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function refuse(message: string): never {
  throw new JouleError("JOULE_ERR_MANIFEST_INVALID", `capabilities.files: ${message}`, {
    problems: [`capabilities.files: ${message}`],
  });
}

/** The entry at `path`, refusing symlinks on every component from the function's directory down. */
async function plainEntry(functionDir: string, relative: string): Promise<"file" | "directory"> {
  let current = functionDir;
  const segments = relative.split("/").filter((s) => s !== "" && s !== ".");
  for (const segment of segments) {
    current = join(current, segment);
    const info = await lstat(current).catch(() => undefined);
    if (!info) refuse(`"${relative}" does not exist in the function's directory`);
    if (info.isSymbolicLink()) refuse(`"${relative}" goes through a symlink (${segment}); ship the file itself`);
  }
  const info = await lstat(current);
  if (info.isDirectory()) return "directory";
  if (info.isFile()) return "file";
  return refuse(`"${relative}" is not a regular file or directory`);
}

/** Reads every file the mounts name, from `functionDir`. */
export async function collectFiles(functionDir: string, mounts: Record<string, string>): Promise<ShippedFile[]> {
  const files: ShippedFile[] = [];
  let total = 0;
  const add = async (path: string, source: string) => {
    const problem = checkGuestPath(path);
    if (problem) refuse(`the shipped file ${JSON.stringify(path)} ${problem}`);
    if (files.length >= MAX_FILES) refuse(`at most ${MAX_FILES} files`);
    const info = await lstat(source);
    if (info.size > MAX_FILE_BYTES) refuse(`${path} is over ${MAX_FILE_BYTES} bytes`);
    // Read as a regular file still inside the function's directory when opened: a file swapped for
    // a FIFO, a device or a symlink since it was listed is refused, not read.
    const bytes = await readRegularFile(
      source,
      MAX_FILE_BYTES,
      async (opened) => (await underRoots([functionDir], opened)) === opened,
    );
    if (!bytes) refuse(`${path} changed while it was read, or is no longer a regular file`);
    total += bytes.byteLength;
    if (total > MAX_BUNDLE_BYTES) refuse(`the files are over ${MAX_BUNDLE_BYTES} bytes together`);
    files.push({ path, bytes });
  };
  const walk = async (dir: string, guestDir: string) => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const source = join(dir, entry.name);
      if (entry.isSymbolicLink()) refuse(`${guestDir}${entry.name} is a symlink; ship the file itself`);
      else if (entry.isDirectory()) await walk(source, `${guestDir}${entry.name}/`);
      else if (entry.isFile()) await add(`${guestDir}${entry.name}`, source);
      else refuse(`${guestDir}${entry.name} is not a regular file`);
    }
  };
  for (const [mount, relative] of Object.entries(mounts)) {
    const kind = await plainEntry(functionDir, relative);
    const source = join(functionDir, relative);
    if (mount.endsWith("/")) {
      if (kind !== "directory") refuse(`${mount} mounts a directory but "${relative}" is a file`);
      await walk(source, mount);
    } else {
      if (kind !== "file") refuse(`${mount} mounts a file but "${relative}" is a directory (end the mount with /)`);
      await add(mount, source);
    }
  }
  return files;
}

/**
 * Checks what a deploy uploaded against the mounts: every file under a
 * mount, no path twice, each file mount present, within the limits.
 */
export function checkShippedFiles(files: readonly ShippedFile[], mounts: readonly string[]): void {
  if (files.length > MAX_FILES) refuse(`at most ${MAX_FILES} files`);
  const seen = new Set<string>();
  let total = 0;
  for (const file of files) {
    const problem = checkGuestPath(file.path);
    if (problem) refuse(`the shipped file ${JSON.stringify(file.path)} ${problem}`);
    if (seen.has(file.path)) refuse(`${file.path} was sent twice`);
    seen.add(file.path);
    if (!mounts.some((mount) => underMount(file.path, mount))) refuse(`${file.path} is under no mount`);
    if (file.bytes.byteLength > MAX_FILE_BYTES) refuse(`${file.path} is over ${MAX_FILE_BYTES} bytes`);
    total += file.bytes.byteLength;
  }
  if (total > MAX_BUNDLE_BYTES) refuse(`the files are over ${MAX_BUNDLE_BYTES} bytes together`);
  for (const mount of mounts) {
    if (!mount.endsWith("/") && !seen.has(mount)) refuse(`${mount} is mounted but its file was not sent`);
  }
}
