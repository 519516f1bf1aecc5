/**
 * How the host opens its SQLite files, so that no file of the data dir is
 * ever mapped into the process.
 *
 * Why: in WAL mode SQLite keeps the WAL index in `<db>-shm`, a file it maps
 * shared and writes through memory (a read transaction writes its read mark
 * there too). When the kernel cannot back a write to such a page, it does not
 * fail a call: it sends SIGBUS and the whole host dies. Measured here (Linux
 * 6.18, SQLite 3.53): `chattr -R +i` on a data dir on ext4 killed the host on
 * the next authenticated request, the fault at offset 104 of `auth.db-shm` (a
 * read mark) on the main thread; on a failing disk a mapped page that cannot
 * be read back does the same. A full tmpfs does not (SQLite writes every page
 * of the -shm before mapping it), and neither does a full ext4.
 *
 * So:
 * - "process" (kv.db, energy.db: the host alone, its worker threads
 *   included): WAL through SQLite's `unix-excl` VFS, which keeps the WAL
 *   index in the heap, shared by the connections of this process, and holds a
 *   lock that keeps other processes out (they get "database is locked");
 * - "shared" (auth.db, secrets.db: `joule keys` and `joule secrets` open
 *   them beside a running host): a rollback journal, which maps nothing, at
 *   the cost of syncs in every write transaction (0.6–1.1 ms on this
 *   machine's disk, up to 8 ms while it was busy, against 0.02 ms in WAL);
 *   those files are written rarely: keys, secrets, and the audit log, whose
 *   denials are written in batches (auth/audit.ts).
 *
 * Every connection has its busy timeout from the moment it opens: a pragma
 * run before it was set (`journal_mode` on open) failed with "database is
 * locked" whenever another worker was writing kv.db.
 */
import { rmSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";

/** How long a connection waits for another's lock before SQLite gives up (SQLITE_BUSY). */
export const BUSY_TIMEOUT_MS = 5000;

export type Access = "process" | "shared";

export function openDatabase(path: string, access: Access): DatabaseSync {
  if (access === "shared") {
    const db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    // Switches a file an earlier version left in WAL mode (which needs no other connection;
    // when one holds it, the file stays in WAL mode this time and is switched at a later open).
    db.exec("PRAGMA journal_mode = DELETE");
    return db;
  }
  const url = pathToFileURL(path);
  url.searchParams.set("vfs", "unix-excl");
  const db = new DatabaseSync(url, { timeout: BUSY_TIMEOUT_MS });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  // An earlier version's -shm is never used again (the lock keeps every other process out): gone,
  // nothing can map it. A data dir that cannot be written keeps it, harmlessly.
  try {
    rmSync(`${path}-shm`, { force: true });
  } catch {}
  return db;
}
