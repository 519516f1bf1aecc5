/**
 * The host's secret store: values a function's env may reference as
 * `secret://<name>` instead of holding them. Each secret names the
 * functions that may use it (or `*`), so a key that may deploy cannot have
 * its function read the host's other secrets. Deploys store the reference;
 * the value is read when an instance is made (so a rotated secret reaches
 * new instances), and it never appears in API responses, logs, errors or
 * the audit log. Kept in `secrets.db` in the data dir; `joule secrets`
 * manages it on the host machine.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { probeWrite } from "../store/probes.ts";
import { openDatabase } from "../store/sqlite.ts";
import { guarded, type StorageReporter } from "../store/storage-error.ts";

export const SECRET_REF = /^secret:\/\/([A-Za-z0-9_.-]{1,128})$/;

export function secretName(value: string): string | undefined {
  return SECRET_REF.exec(value)?.[1];
}

/** Functions allowed to use a secret: names, or "*" for all. */
export type SecretAudience = string[] | "*";

/**
 * A call that fails for the data dir's sake throws JOULE_ERR_HOST_STORAGE
 * (store/storage-error.ts), opening included.
 */
export class SecretStore {
  readonly #db: DatabaseSync;
  readonly path: string;
  readonly #storage: StorageReporter | undefined;

  /**
   * `location`: the data dir, or the secrets.db file itself (as workers are given it).
   * `storage` hears of faults for the data dir's sake, and of writes that work again.
   */
  constructor(location: string, storage?: StorageReporter) {
    this.path = location.endsWith(".db") ? location : join(location, "secrets.db");
    this.#storage = storage;
    mkdirSync(dirname(this.path), { recursive: true });
    // Opened by `joule secrets` beside a running host, and by its workers: shared (store/sqlite.ts).
    this.#db = guarded(
      "secrets.db",
      "the secret store could not be opened",
      () => openDatabase(this.path, "shared"),
      storage,
    );
    try {
      guarded(
        "secrets.db",
        "the secret store could not be opened",
        () =>
          this.#db.exec(
            "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, functions TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT",
          ),
        storage,
      );
    } catch (error) {
      this.#db.close();
      throw error;
    }
  }

  #read<T>(what: string, work: () => T): T {
    return guarded("secrets.db", what, work, this.#storage, this.path);
  }

  #write<T>(what: string, work: () => T): T {
    const result = guarded("secrets.db", what, work, this.#storage, this.path);
    this.#storage?.wrote("secrets.db");
    return result;
  }

  /** A one-row write: whether secrets.db can be written again (storage-health.ts). */
  probe(): void {
    guarded("secrets.db", "probe", () => probeWrite(this.#db), undefined, this.path);
  }

  /** Sets a secret; `functions` may be left out when changing only the value of an existing one. */
  set(name: string, value: string, functions?: SecretAudience): void {
    const audience = functions === undefined ? null : JSON.stringify(functions);
    this.#write("the secret could not be set", () =>
      this.#db
        .prepare(
          `INSERT INTO secrets (name, value, functions, updated_at) VALUES (?, ?, coalesce(?, '[]'), ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
           functions = coalesce(?, secrets.functions)`,
        )
        .run(name, value, audience, new Date().toISOString(), audience),
    );
  }

  delete(name: string): boolean {
    return this.#write(
      "the secret could not be deleted",
      () => Number(this.#db.prepare("DELETE FROM secrets WHERE name = ?").run(name).changes) > 0,
    );
  }

  names(): Array<{ name: string; functions: SecretAudience; updatedAt: string }> {
    const rows = this.#read(
      "the secrets could not be read",
      () =>
        this.#db.prepare("SELECT name, functions, updated_at FROM secrets ORDER BY name").all() as Array<{
          name: string;
          functions: string;
          updated_at: string;
        }>,
    );
    return rows.map((r) => ({
      name: r.name,
      functions: JSON.parse(r.functions) as SecretAudience,
      updatedAt: r.updated_at,
    }));
  }

  /** The value, if the secret is set and `fn` may use it: the caller cannot tell which was not the case. */
  get(name: string, fn: string): string | undefined {
    const row = this.#read(
      "the secret could not be read",
      () =>
        this.#db.prepare("SELECT value, functions FROM secrets WHERE name = ?").get(name) as
          | { value: string; functions: string }
          | undefined,
    );
    if (!row) return undefined;
    const audience = JSON.parse(row.functions) as SecretAudience;
    return audience === "*" || audience.includes(fn) ? row.value : undefined;
  }

  /** `env` with every reference replaced by its value; throws naming (never showing) one `fn` cannot have. */
  resolve(env: Record<string, string>, fn: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) {
      const name = secretName(value);
      if (name === undefined) out[key] = value;
      else {
        const secret = this.get(name, fn);
        if (secret === undefined) throw new Error(`env ${key} references secret ${name}, which is not set for ${fn}`);
        out[key] = secret;
      }
    }
    return out;
  }

  close(): void {
    this.#db.close();
  }
}
