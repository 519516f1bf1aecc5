/**
 * Completes package-lock.json with the platform-specific optional packages
 * the registry this project is developed against does not serve (it mirrors
 * only some platforms' binaries, so `npm install` cannot lock them, and
 * `npm ci` then refuses the lock as out of sync). Each missing package is
 * recorded at the version its parent pins, with the os/cpu/libc its name
 * states, so npm skips it on every other platform without fetching it.
 *
 * Run after any `npm install` that changes the lock:
 *   node scripts/complete-lockfile.ts
 */
import { readFileSync, writeFileSync } from "node:fs";

interface LockEntry {
  version?: string;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

const OS = ["android", "darwin", "linux", "win32", "freebsd", "openharmony", "aix", "sunos", "netbsd", "openbsd"];
const CPU = ["arm64", "x64", "ia32", "ppc64", "s390x", "riscv64", "loong64", "wasm32", "arm"];

function platformOf(name: string): Pick<LockEntry, "os" | "cpu" | "libc"> {
  const base = name.split("/").pop() ?? name;
  const parts = base.split("-");
  const os = OS.find((o) => parts.includes(o));
  const cpu = CPU.find(
    (c) => parts.includes(c) || (c === "arm" && parts.some((p) => p.startsWith("arm") && p !== "arm64")),
  );
  const entry: Pick<LockEntry, "os" | "cpu" | "libc"> = {};
  if (os) entry.os = [os];
  if (cpu) entry.cpu = [cpu === "wasm32" ? "wasm32" : cpu];
  if (os === "linux") entry.libc = [parts.includes("musl") ? "musl" : "glibc"];
  return entry;
}

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8")) as { packages: Record<string, LockEntry> };
const added: string[] = [];
for (const [location, entry] of Object.entries(lock.packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const version = spec.replace(/^[\^~=]/, "");
    const platform = platformOf(name);
    // Only platform binaries: any other optional dependency the registry lacks stays out.
    if (!/^\d+\.\d+\.\d+/.test(version) || (!platform.os && platform.cpu?.[0] !== "wasm32")) continue;
    const nested = `${location ? `${location}/` : ""}node_modules/${name}`;
    const hoisted = lock.packages[`node_modules/${name}`];
    if (lock.packages[nested] || hoisted?.version === version) continue;
    // Hoisted when the slot is free, else beside the parent that pins another version.
    lock.packages[hoisted ? nested : `node_modules/${name}`] = { version, optional: true, ...platform };
    added.push(`${name}@${version}`);
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(
  added.length ? `added ${added.length} platform packages to the lock:\n  ${added.join("\n  ")}` : "lock is complete",
);
