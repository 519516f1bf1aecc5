/**
 * Watches a function's folder for saves: every file but the build's output
 * (dist/), installed packages and version control, debounced so an editor's
 * several writes of one save make one rebuild.
 *
 * One fs.watch per directory, not `recursive`: on Linux Node's recursive
 * watch follows files by inode, so after an editor (or `sed -i`) saves by
 * replacing a file, later writes to it went unseen. A directory's watch
 * sees writes to, and replacements of, every file in it; new directories
 * are picked up as they appear.
 */
import { type Dirent, type FSWatcher, readdirSync, watch } from "node:fs";
import { join, relative } from "node:path";

const IGNORED = /(^|\/)(dist|node_modules|\.git)(\/|$)|~$|\.swp$/;

export interface SourceWatcher {
  close(): void;
}

export function watchSources(root: string, onChange: (files: string[]) => void, debounceMs = 80): SourceWatcher {
  const watchers = new Map<string, FSWatcher>();
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;

  const add = (dir: string) => {
    if (watchers.has(dir) || IGNORED.test(relative(root, dir))) return;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true, encoding: "utf8" });
    } catch {
      return; // gone again already
    }
    const watcher = watch(dir, { encoding: "utf8" }, (event, file) => {
      const name = file ? relative(root, join(dir, file)) : "";
      if (!name || IGNORED.test(name)) return;
      if (event === "rename" && file) add(join(dir, file));
      pending.add(name);
      clearTimeout(timer);
      timer = setTimeout(() => {
        const files = [...pending];
        pending = new Set();
        onChange(files);
      }, debounceMs);
    });
    watcher.on("error", () => {
      watcher.close();
      watchers.delete(dir);
    });
    watchers.set(dir, watcher);
    for (const entry of entries) if (entry.isDirectory()) add(join(dir, entry.name));
  };
  add(root);
  return {
    close() {
      clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
