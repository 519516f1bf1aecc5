/**
 * Which functions have ever been granted each kv store. Store names are
 * shared by the whole host (two functions granted "orders" share it), so a
 * key limited to some functions could otherwise grant its own function
 * another tenant's store and read it. A key limited to functions may grant
 * a store only if no function outside its list was ever granted it; rows
 * are never removed, so what a deleted function left in its store stays out
 * of reach too. Kept in kv.db beside the stores.
 */
import type { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../store/sqlite.ts";

export class KvGrants {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    // Beside the workers' kv connections, the way they open it: nothing mapped (store/sqlite.ts).
    this.#db = openDatabase(path, "process");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS kv_grants (store TEXT NOT NULL, function TEXT NOT NULL, PRIMARY KEY (store, function)) STRICT",
    );
  }

  /** Records that `fn` is granted `stores`. */
  record(fn: string, stores: readonly string[]): void {
    const insert = this.#db.prepare("INSERT OR IGNORE INTO kv_grants (store, function) VALUES (?, ?)");
    for (const store of stores) insert.run(store, fn);
  }

  /** Functions outside `within` that were ever granted one of `stores`, by store. */
  others(stores: readonly string[], within: ReadonlySet<string>): Array<{ store: string; function: string }> {
    if (stores.length === 0) return [];
    const rows = this.#db
      .prepare(`SELECT store, function FROM kv_grants WHERE store IN (${stores.map(() => "?").join(", ")})`)
      .all(...stores) as Array<{ store: string; function: string }>;
    return rows.filter((row) => !within.has(row.function));
  }

  close(): void {
    this.#db.close();
  }
}
