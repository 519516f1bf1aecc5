/**
 * joule:function/files: read-only files shipped with the function
 * (`capabilities.files`), mounted at guest paths. The guest's path is only
 * ever a key into the function's bundle (a list of {path, digest, size}
 * fixed at deploy); the bytes come from the content-addressed blob the host
 * names by digest, so no guest string reaches the host's filesystem.
 *
 * A path that breaks the rules of files-paths.ts, or lies outside every
 * mount, is denied with the WIT `denied` error and audited; a path inside a
 * mount that names no shipped file is `not-found`.
 */
import { readFileSync } from "node:fs";
import { checkGuestPath, checkMountPath, underMount } from "./files-paths.ts";
import type { Denial } from "./kv.ts";

const MAX_DENIALS_PER_INVOCATION = 10;
export const MAX_LIST = 1000;

/** One shipped file: where the guest sees it, and its content's digest and size. */
export interface BundleEntry {
  path: string;
  digest: string;
  size: number;
}

/** What a worker needs: the mounts, and each shipped file's blob on the host's disk. */
export interface FilesGrant {
  mounts: string[];
  entries: Record<string, { blob: string; size: number }>;
}

export const NO_FILES: FilesGrant = { mounts: [], entries: {} };

class FileError {
  readonly tag: "denied" | "not-found";
  readonly val: string;
  constructor(tag: FileError["tag"], val: string) {
    this.tag = tag;
    this.val = val;
  }
}

export function filesImports(grant: FilesGrant, denials: Denial[]) {
  const deny = (operation: string, path: string, why: string): FileError => {
    if (denials.length < MAX_DENIALS_PER_INVOCATION) {
      // The path as JSON: it may hold control characters an audit reader should see escaped.
      denials.push({ capability: "files", operation, resource: JSON.stringify(path).slice(0, 300), reason: why });
    }
    return new FileError("denied", `JOULE_ERR_CAPABILITY_DENIED: files ${JSON.stringify(path)}: ${why}`);
  };
  const check = (operation: string, path: string, directory: boolean): void => {
    const problem = directory ? checkMountPath(path) : checkGuestPath(path);
    if (problem) throw deny(operation, path, `the path ${problem}`);
    const inside = directory
      ? grant.mounts.some(
          (mount) => mount.endsWith("/") && (path.startsWith(mount) || `${path}/` === mount || path === mount),
        )
      : grant.mounts.some((mount) => underMount(path, mount));
    if (!inside) throw deny(operation, path, "outside the function's mounts (capabilities.files)");
  };
  return {
    "joule:function/files": {
      read(path: string): Uint8Array {
        check("read", path, false);
        const entry = grant.entries[path];
        if (!entry) throw new FileError("not-found", `no file ${JSON.stringify(path)} was shipped with the function`);
        return new Uint8Array(readFileSync(entry.blob));
      },
      list(dir: string): string[] {
        check("list", dir, true);
        const prefix = dir.endsWith("/") ? dir : `${dir}/`;
        return Object.keys(grant.entries)
          .filter((path) => path.startsWith(prefix))
          .sort()
          .slice(0, MAX_LIST);
      },
    },
  };
}
