/**
 * The path rules of `capabilities.files`, one place for the manifest (mounts
 * and sources, at deploy), the bundle (every shipped file) and the guest's
 * reads (at run time). Paths are checked, never normalized: a path with
 * `.` or `..` segments, empty segments, backslashes, `%` (so no encoded
 * separator or dot can be decoded later), NUL or other control characters is
 * refused rather than interpreted, so there is nothing to get wrong.
 */

const MAX_PATH_BYTES = 1024;

/** The problem with a `/`-separated path's segments, if any. */
function segmentProblem(segments: string[]): string | undefined {
  for (const segment of segments) {
    if (segment === "") return "has an empty segment (//)";
    if (segment === "." || segment === "..") return `has a "${segment}" segment`;
  }
  return undefined;
}

function characterProblem(path: string): string | undefined {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  if (path.includes("\\")) return "contains a backslash";
  if (path.includes("%")) return "contains %; paths are not URL-encoded";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(path)) return "contains a control character";
  return undefined;
}

/** A guest path of a shipped file: `/a/b.json`. The problem, or undefined when it is valid. */
export function checkGuestPath(path: string): string | undefined {
  if (!path.startsWith("/")) return "must start with /";
  return characterProblem(path) ?? segmentProblem(path.slice(1).split("/"));
}

/** A mount: a guest file path, or a directory ending in `/` (`/` itself mounts at the root). */
export function checkMountPath(path: string): string | undefined {
  if (path === "/") return undefined;
  return checkGuestPath(path.endsWith("/") ? path.slice(0, -1) : path);
}

/** A source in the function's directory: relative, no `..`; a trailing `/` is allowed. */
export function checkSourcePath(path: string): string | undefined {
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return "must be relative to the function's directory";
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  if (trimmed === "" || trimmed === ".") return undefined;
  return characterProblem(trimmed) ?? segmentProblem(trimmed.split("/"));
}

/** Whether a guest path lies under a mount (a directory mount ends in `/`). */
export function underMount(path: string, mount: string): boolean {
  return mount.endsWith("/") ? path.startsWith(mount) : path === mount;
}
