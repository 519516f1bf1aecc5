/**
 * Small writes that tell whether a failing store can be written again
 * (StorageHealth runs them every second while it fails). Only a write can
 * tell: a full or read-only disk still reads.
 */
import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { openDatabase } from "./sqlite.ts";

/** Commits a one-row write to `db` (a table of its own, one row, rewritten). */
export function probeWrite(db: DatabaseSync): void {
  db.exec("CREATE TABLE IF NOT EXISTS joule_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL) STRICT");
  db.prepare("INSERT INTO joule_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at").run(
    Date.now(),
  );
}

/** probeWrite on a database this thread has no connection to (kv.db, which the workers use). */
export function probeDatabase(path: string): void {
  const db = openDatabase(path, "process");
  try {
    probeWrite(db);
  } finally {
    db.close();
  }
}

/** Writes a page-sized file into `dir` and removes it. */
export async function probeDir(dir: string): Promise<void> {
  const path = join(dir, `probe-${randomUUID()}`);
  try {
    await writeFile(path, new Uint8Array(4096));
  } finally {
    await rm(path, { force: true });
  }
}
