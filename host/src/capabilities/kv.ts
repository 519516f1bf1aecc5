/**
 * joule:function/kv: named key-value stores, also what the seed documents
 * call `cache.get/set(key, value, ttl)`. A function reaches only the stores
 * it was granted (`capabilities.kv`); a call on any other name is denied
 * with the WIT `denied` error and reported to the host's audit log.
 * Keys are at most 512 bytes, values 1 MiB, a listing 1000 keys, a store
 * 100,000 keys and 64 MiB of values. The
 * stores live in `kv.db` in the data dir, shared by the workers (SQLite WAL,
 * held by this process alone: store/sqlite.ts).
 *
 * Writers wait for each other (the busy timeout, and a write transaction
 * taken before the quota is read, so no writer reads a snapshot another
 * commits over). A call that fails for the data dir's sake (full,
 * read-only, failing, locked past the wait) is the WIT `other` error, not a
 * trap: the guest can answer it, the worker and the instance go on, and the
 * main thread hears of it (store/storage-report.ts).
 */

import { dirname } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openDatabase } from "../store/sqlite.ts";
import { describeFault, type StorageFault, storageFault } from "../store/storage-error.ts";
import { workerStorage } from "../store/storage-report.ts";

export const MAX_KEY_BYTES = 512;
export const MAX_VALUE_BYTES = 1024 * 1024;
export const MAX_LIST = 1000;
/** What one store may hold: a granted function must not be able to fill the host's disk. */
export const MAX_STORE_KEYS = 100_000;
export const MAX_STORE_BYTES = 64 * 1024 * 1024;
const MAX_DENIALS_PER_INVOCATION = 10;
/** Ten years: past it a TTL is a mistake, and past 2^53 ms it would not fit the store's clock. */
export const MAX_TTL_MS = 10n * 365n * 24n * 3600n * 1000n;

export interface KvGrant {
  stores: string[];
  /** The stores' database file; absent when nothing is granted. */
  path?: string;
}

/** A denied use of a capability, for the host's audit log. */
export interface Denial {
  capability: string;
  operation: string;
  resource: string;
  /** Why, when more than "not granted". */
  reason?: string;
}

class KvDatabase {
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #set: StatementSync;
  readonly #delete: StatementSync;
  readonly #list: StatementSync;
  readonly #purge: StatementSync;
  readonly #usage: StatementSync;

  constructor(path: string) {
    this.#db = openDatabase(path, "process");
    try {
      this.#db.exec(
        "CREATE TABLE IF NOT EXISTS kv (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at INTEGER, PRIMARY KEY (store, key)) STRICT",
      );
      this.#db.exec("CREATE INDEX IF NOT EXISTS kv_expiry ON kv (store, expires_at) WHERE expires_at IS NOT NULL");
    } catch (error) {
      // A new file on a full or failing disk: tried again on the next call.
      this.#db.close();
      throw error;
    }
    this.#usage = this.#db.prepare(
      "SELECT count(*) AS keys, coalesce(sum(length(value)), 0) AS bytes FROM kv WHERE store = ? AND key != ?",
    );
    this.#get = this.#db.prepare(
      "SELECT value FROM kv WHERE store = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
    );
    this.#set = this.#db.prepare(
      "INSERT INTO kv (store, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.#delete = this.#db.prepare(
      "DELETE FROM kv WHERE store = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
    );
    this.#list = this.#db.prepare(
      "SELECT key FROM kv WHERE store = ? AND substr(key, 1, length(?)) = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
    );
    this.#purge = this.#db.prepare("DELETE FROM kv WHERE store = ? AND expires_at IS NOT NULL AND expires_at <= ?");
  }

  get(store: string, key: string): Uint8Array | undefined {
    const row = this.#get.get(store, key, Date.now()) as { value: Uint8Array } | undefined;
    return row ? new Uint8Array(row.value) : undefined;
  }

  /** Stores a value, unless the store would pass its quota: then says which limit, and stores nothing. */
  set(store: string, key: string, value: Uint8Array, ttlMs: bigint | undefined): string | undefined {
    // The write lock first (waiting for it like any write): the quota is read and the value written
    // in one transaction, so two workers cannot both pass the check, and no read snapshot has to be
    // upgraded to a write (in WAL mode that fails at once, whatever the busy timeout).
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const now = Date.now();
      this.#purge.run(store, now);
      // What the store holds besides this key (which the write replaces).
      const { keys, bytes } = this.#usage.get(store, key) as { keys: number; bytes: number };
      let full: string | undefined;
      if (keys + 1 > MAX_STORE_KEYS) full = `a store holds at most ${MAX_STORE_KEYS} keys`;
      else if (bytes + value.byteLength > MAX_STORE_BYTES)
        full = `a store holds at most ${MAX_STORE_BYTES} bytes of values`;
      else this.#set.run(store, key, value, ttlMs === undefined ? null : now + Number(ttlMs));
      this.#db.exec("COMMIT");
      return full;
    } catch (error) {
      // SQLite may have rolled back on its own already (a full disk, an I/O error).
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch {}
      throw error;
    }
  }

  delete(store: string, key: string): boolean {
    return Number(this.#delete.run(store, key, Date.now()).changes) > 0;
  }

  list(store: string, prefix: string, limit: number): string[] {
    // Compared as a prefix, not as a range: a range bound such as prefix + U+FFFF misses keys
    // with characters past it.
    return (this.#list.all(store, prefix, prefix, Date.now(), limit) as Array<{ key: string }>).map((r) => r.key);
  }

  close(): void {
    this.#db.close();
  }
}

const databases = new Map<string, KvDatabase>();

function database(path: string): KvDatabase {
  let db = databases.get(path);
  if (!db) {
    db = new KvDatabase(path);
    databases.set(path, db);
  }
  return db;
}

/** What the guest is told when the data dir fails it: the WIT `other` error ("the store could not be used"). */
function unusable(fault: StorageFault, operation: string): { tag: "other"; val: string } {
  const what = operation === "get" || operation === "list" ? "nothing was read" : "nothing was changed";
  return { tag: "other", val: `the host's storage is ${describeFault(fault)}: ${what}; retry later` };
}

/**
 * Runs a call on the store's database, turning a storage fault into the
 * guest's `other` error. A connection that met a read-only or unopenable
 * file is dropped: SQLite opens a file it cannot write read-only, and would
 * stay so once the data dir can be written again.
 */
function use<T>(path: string, operation: string, call: (db: KvDatabase) => T): T {
  const storage = workerStorage(dirname(path));
  try {
    const result = call(database(path));
    if (operation !== "get" && operation !== "list") storage.wrote("kv.db");
    return result;
  } catch (error) {
    const fault = storageFault(error);
    if (!fault) throw error;
    if (fault.kind === "read-only" || fault.kind === "unavailable") {
      try {
        databases.get(path)?.close();
      } catch {}
      databases.delete(path);
    }
    storage.failed("kv.db", fault);
    throw unusable(fault, operation);
  }
}

const byteLength = (text: string) => Buffer.byteLength(text, "utf8");

export function kvImports(grant: KvGrant, denials: Denial[]) {
  const granted = new Set(grant.stores);
  /** Checks the call against the grant and the key limit, or throws the `denied`/`too-large` error (jco maps a thrown value to the WIT `err`). */
  const check = (operation: string, store: string, key?: string): string => {
    if (!granted.has(store) || !grant.path) {
      // Audited, up to a few per invocation: a loop of denied calls must not flood the log.
      if (denials.length < MAX_DENIALS_PER_INVOCATION) denials.push({ capability: "kv", operation, resource: store });
      throw { tag: "denied", val: `store "${store}" was not granted to this function (capabilities.kv)` };
    }
    if (key !== undefined && byteLength(key) > MAX_KEY_BYTES) {
      throw { tag: "too-large", val: `keys are at most ${MAX_KEY_BYTES} bytes` };
    }
    return grant.path;
  };
  return {
    "joule:function/kv": {
      get: (store: string, key: string) => use(check("get", store, key), "get", (db) => db.get(store, key)),
      set(store: string, key: string, value: Uint8Array, ttlMs: bigint | undefined): void {
        const path = check("set", store, key);
        if (value.byteLength > MAX_VALUE_BYTES)
          throw { tag: "too-large", val: `values are at most ${MAX_VALUE_BYTES} bytes` };
        if (ttlMs !== undefined && ttlMs > MAX_TTL_MS)
          throw { tag: "too-large", val: `a TTL is at most ${MAX_TTL_MS} ms` };
        const full = use(path, "set", (db) => db.set(store, key, value, ttlMs));
        if (full) throw { tag: "too-large", val: full };
      },
      delete: (store: string, key: string) => use(check("delete", store, key), "delete", (db) => db.delete(store, key)),
      list(store: string, prefix: string, limit: number): string[] {
        const path = check("list", store, prefix);
        if (limit > MAX_LIST) throw { tag: "too-large", val: `a listing is at most ${MAX_LIST} keys` };
        return use(path, "list", (db) => db.list(store, prefix, limit));
      },
    },
  };
}
