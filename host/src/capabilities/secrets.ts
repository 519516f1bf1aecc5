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
import { openDatabase } from "../store/sqlite.ts";

export const SECRET_REF = /^secret:\/\/([A-Za-z0-9_.-]{1,128})$/;

export function secretName(value: string): string | undefined {
  return SECRET_REF.exec(value)?.[1];
}

/** Functions allowed to use a secret: names, or "*" for all. */
export type SecretAudience = string[] | "*";

export class SecretStore {
  readonly #db: DatabaseSync;
  readonly path: string;

  /** `location`: the data dir, or the secrets.db file itself (as workers are given it). */
  constructor(location: string) {
    this.path = location.endsWith(".db") ? location : join(location, "secrets.db");
    mkdirSync(dirname(this.path), { recursive: true });
    // Opened by `joule secrets` beside a running host, and by its workers: shared (store/sqlite.ts).
    this.#db = openDatabase(this.path, "shared");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, functions TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT",
    );
  }

  /** Sets a secret; `functions` may be left out when changing only the value of an existing one. */
  set(name: string, value: string, functions?: SecretAudience): void {
    const audience = functions === undefined ? null : JSON.stringify(functions);
    this.#db
      .prepare(
        `INSERT INTO secrets (name, value, functions, updated_at) VALUES (?, ?, coalesce(?, '[]'), ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
           functions = coalesce(?, secrets.functions)`,
      )
      .run(name, value, audience, new Date().toISOString(), audience);
  }

  delete(name: string): boolean {
    return Number(this.#db.prepare("DELETE FROM secrets WHERE name = ?").run(name).changes) > 0;
  }

  names(): Array<{ name: string; functions: SecretAudience; updatedAt: string }> {
    const rows = this.#db.prepare("SELECT name, functions, updated_at FROM secrets ORDER BY name").all() as Array<{
      name: string;
      functions: string;
      updated_at: string;
    }>;
    return rows.map((r) => ({
      name: r.name,
      functions: JSON.parse(r.functions) as SecretAudience,
      updatedAt: r.updated_at,
    }));
  }

  /** The value, if the secret is set and `fn` may use it: the caller cannot tell which was not the case. */
  get(name: string, fn: string): string | undefined {
    const row = this.#db.prepare("SELECT value, functions FROM secrets WHERE name = ?").get(name) as
      | { value: string; functions: string }
      | undefined;
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
