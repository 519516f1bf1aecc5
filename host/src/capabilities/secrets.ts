/**
 * The host's secret store: values a function's env may reference as
 * `secret://<name>` instead of holding them. Each secret names the
 * functions that may use it (or `*`), so a key that may deploy cannot have
 * its function read the host's other secrets. Deploys store the reference;
 * the value is read when an instance is made (so a rotated secret reaches
 * new instances), and it never appears in API responses, logs, errors or
 * the audit log. Kept in `secrets.db` in the data dir; `joule secrets`
 * manages it on the host machine.
 *
 * Values are never plain text at rest: each is sealed (AES-256-GCM, its name
 * as associated data: capabilities/secrets-seal.ts) under the host's secrets
 * key, which lives outside the data dir (capabilities/secrets-key.ts). Every
 * connection that writes has `secure_delete` on, and the file keeps a
 * rollback journal (store/sqlite.ts: nothing of it is mapped), so a rotated
 * or deleted value does not linger in free pages or journals either. Stores
 * from before sealing are migrated when the host or `joule secrets` first
 * opens them (capabilities/secrets-schema.ts). A call that fails for the
 * data dir's sake throws JOULE_ERR_HOST_STORAGE (store/storage-error.ts).
 */
import type { KeyObject } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { JouleError } from "../errors.ts";
import { probeWrite } from "../store/probes.ts";
import { openDatabase } from "../store/sqlite.ts";
import { guarded, type StorageReporter } from "../store/storage-error.ts";
import { readKeyFile, resolveKey } from "./secrets-key.ts";
import {
  checkpoint,
  inTransaction,
  scrubIfPending,
  setStoredKeyId,
  storedKeyId,
  storeState,
  upgrade,
} from "./secrets-schema.ts";
import { keyId, seal, unseal } from "./secrets-seal.ts";

export const SECRET_REF = /^secret:\/\/([A-Za-z0-9_.-]{1,128})$/;

export function secretName(value: string): string | undefined {
  return SECRET_REF.exec(value)?.[1];
}

/** Functions allowed to use a secret: names, or "*" for all. */
export type SecretAudience = string[] | "*";

/** Where a worker finds the store and its key: paths only, never the key itself. */
export interface SecretFiles {
  db: string;
  keyFile: string;
}

/** What opening the store found, for the host's start-up log line. */
export interface SecretKeyInfo {
  path: string;
  id: string;
  generated: boolean;
  /** Plain-text values sealed by this open (a store from before sealing). */
  migrated: number;
}

export class SecretStore {
  readonly #db: DatabaseSync;
  readonly #key: KeyObject;
  readonly files: SecretFiles;
  readonly keyInfo: SecretKeyInfo;
  readonly #storage: StorageReporter | undefined;

  private constructor(
    db: DatabaseSync,
    key: KeyObject,
    files: SecretFiles,
    keyInfo: SecretKeyInfo,
    storage: StorageReporter | undefined,
  ) {
    this.#db = db;
    this.#key = key;
    this.files = files;
    this.keyInfo = keyInfo;
    this.#storage = storage;
  }

  #read<T>(what: string, work: () => T): T {
    return guarded("secrets.db", what, work, this.#storage, this.files.db);
  }

  #write<T>(what: string, work: () => T): T {
    const result = guarded("secrets.db", what, work, this.#storage, this.files.db);
    this.#storage?.wrote("secrets.db");
    return result;
  }

  /** A one-row write: whether secrets.db can be written again (store/storage-health.ts). */
  probe(): void {
    guarded("secrets.db", "probe", () => probeWrite(this.#db), undefined, this.files.db);
  }

  /**
   * The store of a data dir, for the host's main thread and `joule secrets`:
   * finds or makes its key (`keyFile`, else beside the data dir), checks that
   * it is the key the values were sealed with, and migrates a store from
   * before sealing. Throws JOULE_ERR_SECRET_STORE_UNUSABLE saying what to do.
   */
  static open(options: { dataDir: string; keyFile?: string | undefined }, storage?: StorageReporter): SecretStore {
    mkdirSync(options.dataDir, { recursive: true });
    const path = join(options.dataDir, "secrets.db");
    // Opened by `joule secrets` beside a running host: shared (store/sqlite.ts).
    const db = guarded(
      "secrets.db",
      "the secret store could not be opened",
      () => openDatabase(path, "shared"),
      storage,
      path,
    );
    try {
      db.exec("PRAGMA secure_delete = ON;");
      const state = storeState(db);
      if (state.version === "newer") {
        throw new JouleError(
          "JOULE_ERR_SECRET_STORE_UNUSABLE",
          `${path} was written by a newer Joule (schema ${state.found}): run that version`,
        );
      }
      const sealed = state.version === 1 ? state.sealed : 0;
      const resolved = resolveKey({ dataDir: options.dataDir, keyFile: options.keyFile, sealed });
      const id = keyId(resolved.key);
      const migrated = upgrade(db, resolved.key, id);
      checkKey(db, id, resolved.path);
      scrubIfPending(db);
      const info = { path: resolved.path, id, generated: resolved.generated, migrated };
      return new SecretStore(db, resolved.key, { db: path, keyFile: resolved.path }, info, storage);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * The store as a worker reads it, from the files the host checked at start.
   * The worker reads the key file itself rather than being sent the key: the
   * key then never travels in a message (tasks and images are cached, counted
   * and may be logged), and only threads that resolve a secret ever hold it.
   * Read-only: a worker never writes secrets. Failures name no path (they
   * may reach a response); the host's start checked the same file and said why.
   */
  static reader(files: SecretFiles, storage?: StorageReporter): SecretStore {
    let key: KeyObject | undefined;
    try {
      key = readKeyFile(files.keyFile);
    } catch {
      key = undefined;
    }
    if (!key) {
      throw new JouleError(
        "JOULE_ERR_SECRET_UNREADABLE",
        "the host's secrets key file is missing or unusable since the host started: restart the host to see why",
      );
    }
    const db = guarded(
      "secrets.db",
      "the secret store could not be opened",
      () => new DatabaseSync(files.db, { readOnly: true, timeout: 5000 }),
      storage,
      files.db,
    );
    const info = { path: files.keyFile, id: keyId(key), generated: false, migrated: 0 };
    return new SecretStore(db, key, files, info, storage);
  }

  /** Sets a secret; `functions` may be left out when changing only the value of an existing one. */
  set(name: string, value: string, functions?: SecretAudience): void {
    const audience = functions === undefined ? null : JSON.stringify(functions);
    const sealed = seal(this.#key, name, value);
    this.#write("the secret could not be set", () => {
      this.#db
        .prepare(
          `INSERT INTO secrets (name, sealed, functions, updated_at) VALUES (?, ?, coalesce(?, '[]'), ?)
         ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at,
           functions = coalesce(?, secrets.functions)`,
        )
        .run(name, sealed, audience, new Date().toISOString(), audience);
      checkpoint(this.#db, false);
    });
  }

  delete(name: string): boolean {
    return this.#write("the secret could not be deleted", () => {
      const deleted = Number(this.#db.prepare("DELETE FROM secrets WHERE name = ?").run(name).changes) > 0;
      checkpoint(this.#db, false);
      return deleted;
    });
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

  /** Whether the secret is set and `fn` may use it; the value is not decrypted. */
  allows(name: string, fn: string): boolean {
    const row = this.#read(
      "the secret could not be read",
      () =>
        this.#db.prepare("SELECT functions FROM secrets WHERE name = ?").get(name) as { functions: string } | undefined,
    );
    if (!row) return false;
    const audience = JSON.parse(row.functions) as SecretAudience;
    return audience === "*" || audience.includes(fn);
  }

  /**
   * The value, if the secret is set and `fn` may use it: the caller cannot
   * tell which was not the case. A value that does not authenticate under
   * the key and its name is JOULE_ERR_SECRET_UNREADABLE naming the secret.
   */
  get(name: string, fn: string): string | undefined {
    const row = this.#read(
      "the secret could not be read",
      () =>
        this.#db.prepare("SELECT sealed, functions FROM secrets WHERE name = ?").get(name) as
          | { sealed: Uint8Array; functions: string }
          | undefined,
    );
    if (!row) return undefined;
    const audience = JSON.parse(row.functions) as SecretAudience;
    if (audience !== "*" && !audience.includes(fn)) return undefined;
    const value = unseal(this.#key, name, row.sealed);
    if (value === undefined) {
      throw new JouleError(
        "JOULE_ERR_SECRET_UNREADABLE",
        `secret ${name} does not decrypt with the host's secrets key (it was altered, moved from another name, or sealed with another key): set it again with joule secrets set ${name}`,
      );
    }
    return value;
  }

  /** `env` with every reference replaced by its value; throws naming (never showing) one `fn` cannot have. */
  resolve(env: Record<string, string>, fn: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) {
      const name = secretName(value);
      if (name === undefined) out[key] = value;
      else {
        const secret = this.get(name, fn);
        if (secret === undefined) {
          throw new JouleError(
            "JOULE_ERR_SECRET_MISSING",
            `env ${key} references secret ${name}, which is not set for ${fn}`,
          );
        }
        out[key] = secret;
      }
    }
    return out;
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * Refuses a key that is not the one the store's values were sealed with
 * (so no value is ever opened with the wrong one); a store with no values
 * takes the key it is given.
 */
function checkKey(db: DatabaseSync, id: string, keyPath: string): void {
  inTransaction(db, () => {
    const stored = storedKeyId(db);
    if (stored === id) return;
    const state = storeState(db);
    const sealed = state.version === 1 ? state.sealed : 0;
    if (sealed === 0) return setStoredKeyId(db, id);
    throw new JouleError(
      "JOULE_ERR_SECRET_STORE_UNUSABLE",
      `the secrets key in ${keyPath} (id ${id}) is not the key the ${sealed} secret(s) in secrets.db were sealed with (id ${stored ?? "unknown"}): point JOULE_SECRETS_KEY_FILE at that key, or delete secrets.db and set the secrets again`,
    );
  });
}
