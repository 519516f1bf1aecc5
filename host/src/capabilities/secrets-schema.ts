/**
 * secrets.db's schema, and the one-time move from plain-text values to
 * sealed ones.
 *
 * Version 0 (`PRAGMA user_version` 0, before issue 13) kept each value in
 * plain text: `secrets (name, value TEXT, functions, updated_at)`. Version 1
 * keeps it sealed (capabilities/secrets-seal.ts) in `secrets.sealed BLOB`,
 * and `secrets_meta` holds the id of the key that sealed them. The column
 * has a new name so that an older `joule secrets` fails on a version 1 store
 * instead of writing plain text into it.
 *
 * Migrating rewrites every value sealed, in one transaction, then scrubs the
 * file: plain text lingers after a DROP in free pages, in the main file's
 * old pages until a checkpoint, and in the WAL (which an older host may have
 * left full of it) until the WAL is reset. So: secure_delete (zeroes what is
 * freed), a checkpoint that truncates the WAL, VACUUM (rebuilds the file
 * from live rows only), and a second truncating checkpoint. A scrub that
 * cannot finish (another process holds the file) fails the start and is
 * retried at the next one: `scrub_pending` stays set until it is done.
 */
import type { KeyObject } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import { JouleError } from "../errors.ts";
import { seal } from "./secrets-seal.ts";

const SCHEMA_VERSION = 1;

export type StoreState =
  | { version: 0; plain: number }
  | { version: typeof SCHEMA_VERSION; sealed: number }
  | { version: "newer"; found: number };

export function storeState(db: DatabaseSync): StoreState {
  const version = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  if (version > SCHEMA_VERSION) return { version: "newer", found: version };
  const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'secrets'").get();
  const rows = table ? Number((db.prepare("SELECT count(*) AS n FROM secrets").get() as { n: number }).n) : 0;
  return version === 0 ? { version: 0, plain: rows } : { version: SCHEMA_VERSION, sealed: rows };
}

/**
 * Brings the store to version 1 under `key` (whose id is `id`): creates it,
 * or seals the plain-text values of version 0. Returns how many values it
 * sealed. Safe when a host and `joule secrets` open the store at once: the
 * version is read again inside the write transaction.
 */
export function upgrade(db: DatabaseSync, key: KeyObject, id: string): number {
  let sealed = 0;
  inTransaction(db, () => {
    const state = storeState(db);
    if (state.version !== 0) return;
    if (db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'secrets'").get()) {
      db.exec(
        "CREATE TABLE secrets_v1 (name TEXT PRIMARY KEY, sealed BLOB NOT NULL, functions TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT",
      );
      const rows = db.prepare("SELECT name, value, functions, updated_at FROM secrets").all() as Array<{
        name: string;
        value: string;
        functions: string;
        updated_at: string;
      }>;
      const insert = db.prepare("INSERT INTO secrets_v1 (name, sealed, functions, updated_at) VALUES (?, ?, ?, ?)");
      for (const row of rows) insert.run(row.name, seal(key, row.name, row.value), row.functions, row.updated_at);
      db.exec("DROP TABLE secrets; ALTER TABLE secrets_v1 RENAME TO secrets");
      sealed = rows.length;
    } else {
      db.exec(
        "CREATE TABLE secrets (name TEXT PRIMARY KEY, sealed BLOB NOT NULL, functions TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT",
      );
    }
    db.exec("CREATE TABLE secrets_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT");
    const meta = db.prepare("INSERT INTO secrets_meta (name, value) VALUES (?, ?)");
    meta.run("key_id", id);
    // Even with no rows: an older host's WAL may still hold values it deleted.
    meta.run("scrub_pending", "1");
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
  return sealed;
}

/** Finishes a migration's scrub if one is pending (see the module's doc). */
export function scrubIfPending(db: DatabaseSync): void {
  if (!db.prepare("SELECT 1 FROM secrets_meta WHERE name = 'scrub_pending'").get()) return;
  checkpoint(db, true);
  db.exec("VACUUM");
  db.prepare("DELETE FROM secrets_meta WHERE name = 'scrub_pending'").run();
  checkpoint(db, true);
}

/**
 * Copies the WAL into the main file and truncates it to nothing, so that old
 * versions of changed pages are not left in it. `required`: fail when
 * another connection keeps it from finishing, else leave it to the next write.
 */
export function checkpoint(db: DatabaseSync, required: boolean): void {
  const result = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number } | undefined;
  if (required && result?.busy !== 0) {
    throw new JouleError(
      "JOULE_ERR_SECRET_STORE_UNUSABLE",
      "secrets.db's old plain-text pages could not be erased because another process is using it (a running `joule secrets`?): start the host again once it is done",
    );
  }
}

/** The id of the key the store's values were sealed with. */
export function storedKeyId(db: DatabaseSync): string | undefined {
  const row = db.prepare("SELECT value FROM secrets_meta WHERE name = 'key_id'").get() as { value: string } | undefined;
  return row?.value;
}

export function setStoredKeyId(db: DatabaseSync, id: string): void {
  db.prepare(
    "INSERT INTO secrets_meta (name, value) VALUES ('key_id', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
  ).run(id);
}

export function inTransaction(db: DatabaseSync, work: () => void): void {
  // IMMEDIATE: take the write lock first, so what is read inside cannot change before the write.
  db.exec("BEGIN IMMEDIATE");
  try {
    work();
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
