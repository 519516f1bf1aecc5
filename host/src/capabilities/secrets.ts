/**
 * The host's secret store: values a function's env may reference as
 * `secret://<name>` instead of holding them. Deploys store the reference;
 * the value is read when an instance is made (so a rotated secret reaches
 * new instances), and it never appears in API responses, logs, errors or
 * the audit log. Kept in `secrets.db` in the data dir; `joule secrets`
 * manages it on the host machine.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";

export const SECRET_REF = /^secret:\/\/([A-Za-z0-9_.-]{1,128})$/;

export function secretName(value: string): string | undefined {
  return SECRET_REF.exec(value)?.[1];
}

export class SecretStore {
  readonly #db: DatabaseSync;
  readonly path: string;

  /** `location`: the data dir, or the secrets.db file itself (as workers are given it). */
  constructor(location: string) {
    this.path = location.endsWith(".db") ? location : join(location, "secrets.db");
    mkdirSync(dirname(this.path), { recursive: true });
    this.#db = new DatabaseSync(this.path);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;");
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT",
    );
  }

  set(name: string, value: string): void {
    this.#db
      .prepare(
        "INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      )
      .run(name, value, new Date().toISOString());
  }

  delete(name: string): boolean {
    return Number(this.#db.prepare("DELETE FROM secrets WHERE name = ?").run(name).changes) > 0;
  }

  names(): Array<{ name: string; updatedAt: string }> {
    return (
      this.#db.prepare("SELECT name, updated_at FROM secrets ORDER BY name").all() as Array<{
        name: string;
        updated_at: string;
      }>
    ).map((r) => ({ name: r.name, updatedAt: r.updated_at }));
  }

  get(name: string): string | undefined {
    return (this.#db.prepare("SELECT value FROM secrets WHERE name = ?").get(name) as { value: string } | undefined)
      ?.value;
  }

  /** The names `env` references that are not set. */
  missing(env: Record<string, string>): string[] {
    const names = Object.values(env)
      .map(secretName)
      .filter((n): n is string => n !== undefined);
    return [...new Set(names)].filter((name) => this.get(name) === undefined);
  }

  /** `env` with every reference replaced by its value; throws naming (never showing) an unset one. */
  resolve(env: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) {
      const name = secretName(value);
      if (name === undefined) out[key] = value;
      else {
        const secret = this.get(name);
        if (secret === undefined) throw new Error(`env ${key} references secret ${name}, which is not set`);
        out[key] = secret;
      }
    }
    return out;
  }

  close(): void {
    this.#db.close();
  }
}
