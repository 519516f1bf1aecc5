/**
 * The package-lock.json `joule init` writes: the exact versions of every
 * package the new function installs (the CLI's dependencies, typescript,
 * @types/node, node, hono), as this CLI was built and tested with them.
 * It makes installs reproducible, and lets `npm install --offline` work
 * from a cache that a Joule install filled: npm then needs no registry
 * metadata, only the tarballs, which are cached by their integrity.
 *
 * Taken from the repository's own package-lock.json: the entries reachable
 * from the given packages through their dependencies, resolved the way
 * Node resolves (a nested node_modules first, then outwards).
 */

export interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [key: string]: unknown;
}

export type LockPackages = Record<string, LockEntry>;

/** Where `name`, needed by the package at `from`, is in the lock: the nearest node_modules up the path. */
function locate(packages: LockPackages, from: string, name: string): string | undefined {
  for (let at = from; ; ) {
    const candidate = `${at ? `${at}/` : ""}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!at) return undefined;
    const cut = at.lastIndexOf("/node_modules/");
    at = cut < 0 ? "" : at.slice(0, cut);
  }
}

/** The lock entries reachable from the top-level packages `roots`, without dev/optional flags of the source lock. */
export function lockSubtree(packages: LockPackages, roots: string[]): LockPackages {
  const out: LockPackages = {};
  const queue = roots.map((name) => `node_modules/${name}`).filter((path) => packages[path]);
  while (queue.length > 0) {
    const path = queue.shift() as string;
    if (out[path]) continue;
    const { dev, devOptional, peer, ...entry } = packages[path] as LockEntry;
    out[path] = entry;
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}),
    ];
    for (const name of names) {
      const found = locate(packages, path, name);
      if (found && !out[found]) queue.push(found);
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
