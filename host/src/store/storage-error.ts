/**
 * Which failures belong to the data dir rather than to the host: the ways
 * SQLite and the file system say that the disk is full, read-only, failing,
 * damaged or locked. One place decides, so that every caller answers them
 * alike: a coded 503 (JOULE_ERR_HOST_STORAGE) over HTTP, the `other` error of
 * joule:function/kv in a guest, never a 500 or a trap.
 */
import { accessSync, constants } from "node:fs";
import { dirname, isAbsolute, relative } from "node:path";
import { JouleError } from "../errors.ts";

export type StorageKind = "full" | "read-only" | "io" | "damaged" | "locked" | "unavailable";

/** The parts of the data dir that fail separately: the SQLite files, and the function store's files. */
export type StoreName = "auth.db" | "energy.db" | "kv.db" | "secrets.db" | "functions";

export const STORE_NAMES: readonly StoreName[] = ["auth.db", "energy.db", "kv.db", "secrets.db", "functions"];

export interface StorageFault {
  kind: StorageKind;
  /** What SQLite or the system said, without paths (it reaches API answers and /readyz). */
  cause: string;
}

/** SQLite's primary result codes (sqlite.org/rescode.html); node:sqlite gives the extended code as `errcode`. */
const SQLITE_KINDS: Record<number, StorageKind> = {
  5: "locked", // SQLITE_BUSY: still locked once busy_timeout has waited
  6: "locked", // SQLITE_LOCKED
  8: "read-only", // SQLITE_READONLY
  10: "io", // SQLITE_IOERR (also what a write refused with EPERM becomes)
  11: "damaged", // SQLITE_CORRUPT: also what reads that fail underneath look like (seen on an ext4 shut down)
  13: "full", // SQLITE_FULL
  14: "unavailable", // SQLITE_CANTOPEN
  15: "locked", // SQLITE_PROTOCOL: the WAL lock could not be had
  26: "damaged", // SQLITE_NOTADB
};

const ERRNO_KINDS: Record<string, StorageKind> = {
  ENOSPC: "full",
  EDQUOT: "full",
  EROFS: "read-only",
  EIO: "io",
  EACCES: "unavailable",
  EPERM: "unavailable",
};

/** Some fs calls (rmSync) report errno as libuv's UNKNOWN and only name it in the message. */
const ERRNO_MESSAGES: Array<[RegExp, StorageKind, string]> = [
  [/no space left on device/i, "full", "ENOSPC"],
  [/disk quota exceeded/i, "full", "EDQUOT"],
  [/read-only file system/i, "read-only", "EROFS"],
  [/input\/output error/i, "io", "EIO"],
];

function within(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * The storage fault `error` is, or undefined when it is something else. A
 * denied permission (EACCES, EPERM) counts only on a path inside `dataDir`:
 * elsewhere (a component path on the host's disk) it is the caller's problem.
 */
export function storageFault(error: unknown, dataDir?: string): StorageFault | undefined {
  // Already answered: a coded error says its own store.
  if (typeof error !== "object" || error === null || error instanceof JouleError) return undefined;
  const e = error as { code?: unknown; errcode?: unknown; errstr?: unknown; message?: unknown; path?: unknown };
  const message = typeof e.message === "string" ? e.message : "";
  if (e.code === "ERR_SQLITE_ERROR" && typeof e.errcode === "number") {
    const kind = SQLITE_KINDS[e.errcode & 0xff];
    return kind && { kind, cause: typeof e.errstr === "string" && e.errstr ? e.errstr : message };
  }
  if (typeof e.code === "string" && e.code in ERRNO_KINDS) {
    const kind = ERRNO_KINDS[e.code] as StorageKind;
    if (kind === "unavailable" && !(dataDir && typeof e.path === "string" && within(dataDir, e.path))) return undefined;
    // "ENOSPC: no space left on device, write '/path'": the part before the path.
    return { kind, cause: message.split(",")[0] || e.code };
  }
  for (const [pattern, kind, code] of ERRNO_MESSAGES) {
    if (pattern.test(message)) return { kind, cause: `${code}: ${(pattern.exec(message) as RegExpExecArray)[0]}` };
  }
  return undefined;
}

/** The fault of a storage error, coded (JOULE_ERR_HOST_STORAGE) or not; undefined for anything else. */
export function faultOf(error: unknown, dataDir?: string): StorageFault | undefined {
  if (error instanceof JouleError) {
    if (error.code !== "JOULE_ERR_HOST_STORAGE") return undefined;
    const { kind, cause } = error.details as StorageFault;
    return { kind, cause };
  }
  return storageFault(error, dataDir);
}

const DESCRIBED: Record<StorageKind, string> = {
  full: "full",
  "read-only": "read-only",
  io: "failing (I/O errors)",
  damaged: "damaged",
  locked: "locked past the wait",
  unavailable: "not accessible",
};

export function describeFault(fault: StorageFault): string {
  return `${DESCRIBED[fault.kind]} (${fault.cause})`;
}

const LABELS: Record<StoreName, string> = {
  "auth.db": "auth.db",
  "energy.db": "energy.db",
  "kv.db": "kv.db",
  "secrets.db": "secrets.db",
  functions: "function store",
};

/** The coded error for a fault of `store`; `what` says what could not be done. */
export function storageError(store: StoreName, fault: StorageFault, what: string): JouleError {
  return new JouleError(
    "JOULE_ERR_HOST_STORAGE",
    `${what}: the data dir's ${LABELS[store]} is ${describeFault(fault)}. Free space or fix the disk and retry; the host recovers by itself`,
    { store, kind: fault.kind, cause: fault.cause },
  );
}

/** Who hears of storage faults and of writes that worked again (storage-health.ts, storage-report.ts). */
export interface StorageReporter {
  failed(store: StoreName, fault: StorageFault): void;
  /** A write to `store` succeeded: it is healthy again, if it was not. */
  wrote(store: StoreName): void;
}

/**
 * SQLite says only "unable to open database file" when it cannot make its
 * journal; the directory says why (a read-only file system, a denied write).
 */
export function refine(fault: StorageFault, path: string | undefined): StorageFault {
  if (fault.kind !== "unavailable" || !path) return fault;
  try {
    accessSync(dirname(path), constants.W_OK);
    return fault;
  } catch (error) {
    return storageFault(error, dirname(path)) ?? fault;
  }
}

/**
 * Runs `work` on `store` (a database at `path`); a storage fault is reported
 * and thrown as the coded error, anything else is thrown as it was. Success
 * is not reported: a read that works says nothing about writes (a full disk
 * still reads).
 */
export function guarded<T>(
  store: StoreName,
  what: string,
  work: () => T,
  reporter?: StorageReporter,
  path?: string,
): T {
  try {
    return work();
  } catch (error) {
    const found = storageFault(error);
    if (!found) throw error;
    const fault = refine(found, path);
    reporter?.failed(store, fault);
    throw storageError(store, fault, what);
  }
}
