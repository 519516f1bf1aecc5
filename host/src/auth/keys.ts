/**
 * API keys: who may manage and invoke functions. A key is shown once, when
 * it is made (`jk_<id>_<secret>`); the host keeps only its id, scopes and
 * the SHA-256 of its secret (the secret is 256 random bits, so a slow hash
 * adds nothing), and compares digests in constant time.
 *
 * Keys live in `auth.db` in the data dir beside the audit log; `joule keys`
 * manages them there directly, as an operator on the host machine would.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { z } from "zod";
import { probeWrite } from "../store/probes.ts";
import { openDatabase } from "../store/sqlite.ts";
import { guarded, type StorageReporter } from "../store/storage-error.ts";

export const SCOPES = [
  "functions:manage",
  "functions:invoke",
  "energy:manage",
  "artifacts:manage",
  "audit:read",
  "keys:manage",
  "metrics:read",
  "secrets:manage",
] as const;
export type Scope = (typeof SCOPES)[number];

export const scopeSchema = z.enum(SCOPES);

export interface Principal {
  /** The key's id (what budgets and the audit log name), or "anonymous". */
  id: string;
  name: string;
  scopes: ReadonlySet<Scope>;
  /** With functions:invoke: the functions it may invoke; undefined means all. */
  functions: ReadonlySet<string> | undefined;
}

export interface KeyInfo {
  id: string;
  name: string;
  scopes: Scope[];
  functions: string[] | null;
  createdAt: string;
  /** The principal that made it over the admin API; null for keys made by `joule keys` or at first start. */
  createdBy: string | null;
  revoked: boolean;
}

/** The principal of the operator's JOULE_ADMIN_TOKEN (key ids are 16 hex digits, so none is this). */
export const OPERATOR_ID = "operator";

/** The principal of what the host does itself: the examples `joule serve` deploys, init at deploy. */
export const HOST_ID = "host";

export const ANONYMOUS: Principal = { id: "anonymous", name: "anonymous", scopes: new Set(), functions: undefined };

const KEY = /^jk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const digest = (secret: string) => createHash("sha256").update(secret).digest();

/** auth.db, made if new; JOULE_ERR_HOST_STORAGE when the data dir cannot give it. */
export function openAuthDb(dataDir: string): DatabaseSync {
  mkdirSync(dataDir, { recursive: true });
  // Opened by `joule keys` beside a running host: a file other processes share (store/sqlite.ts).
  const db = guarded("auth.db", "auth.db could not be opened", () => openDatabase(join(dataDir, "auth.db"), "shared"));
  try {
    guarded("auth.db", "auth.db could not be opened", () => createKeysTable(db));
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

function createKeysTable(db: DatabaseSync): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      secret_sha256 BLOB NOT NULL,
      scopes TEXT NOT NULL,
      functions TEXT,
      created_at TEXT NOT NULL,
      revoked INTEGER NOT NULL DEFAULT 0
    ) STRICT;
  `);
  // Added with /v1/keys; data dirs made before it get the column empty.
  const columns = db.prepare("PRAGMA table_info(keys)").all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === "created_by")) {
    try {
      db.exec("ALTER TABLE keys ADD COLUMN created_by TEXT");
    } catch (error) {
      // `joule keys` and the host opening an old auth.db at once: the other one added it.
      if (!String((error as Error).message).includes("duplicate column")) throw error;
    }
  }
}

interface KeyRow {
  id: string;
  name: string;
  secret_sha256: Uint8Array;
  scopes: string;
  functions: string | null;
  created_at: string;
  created_by: string | null;
  revoked: number;
}

/**
 * The keys in auth.db. A call that fails for the data dir's sake throws
 * JOULE_ERR_HOST_STORAGE (store/storage-error.ts): a key cannot be made or
 * revoked then, and one that cannot be looked up is neither valid nor
 * invalid (a full or read-only disk still reads: only a failing one cannot).
 */
export class KeyStore {
  readonly #db: DatabaseSync;
  readonly #storage: StorageReporter | undefined;
  readonly #path: string | undefined;

  /** `storage` hears of writes that fail for the data dir's sake, and of the next that works. */
  constructor(db: DatabaseSync, storage?: StorageReporter) {
    this.#db = db;
    this.#storage = storage;
    this.#path = db.location() ?? undefined;
  }

  #read<T>(what: string, work: () => T): T {
    return guarded("auth.db", what, work, this.#storage, this.#path);
  }

  #write<T>(what: string, work: () => T): T {
    const result = guarded("auth.db", what, work, this.#storage, this.#path);
    this.#storage?.wrote("auth.db");
    return result;
  }

  /** A one-row write: whether auth.db can be written again (storage-health.ts). */
  probe(): void {
    guarded("auth.db", "probe", () => probeWrite(this.#db), undefined, this.#path);
  }

  count(): number {
    return this.#read("the keys could not be counted", () =>
      Number((this.#db.prepare("SELECT count(*) AS n FROM keys").get() as { n: number }).n),
    );
  }

  /** Makes a key and returns it in full: the only time its secret exists outside the caller. */
  create(input: { name: string; scopes: Scope[]; functions?: string[] | undefined; createdBy?: string }): {
    key: string;
    info: KeyInfo;
  } {
    const id = randomBytes(8).toString("hex");
    const secret = randomBytes(32).toString("base64url");
    const createdAt = new Date().toISOString();
    const scopes = [...new Set(input.scopes)].sort();
    const functions = input.functions?.length ? [...new Set(input.functions)].sort() : null;
    const createdBy = input.createdBy ?? null;
    this.#write("the key could not be made", () =>
      this.#db
        .prepare(
          "INSERT INTO keys (id, name, secret_sha256, scopes, functions, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          id,
          input.name,
          digest(secret),
          JSON.stringify(scopes),
          functions && JSON.stringify(functions),
          createdAt,
          createdBy,
        ),
    );
    return {
      key: `jk_${id}_${secret}`,
      info: { id, name: input.name, scopes, functions, createdAt, createdBy, revoked: false },
    };
  }

  revoke(id: string): boolean {
    return this.#write(
      "the key could not be revoked",
      () => Number(this.#db.prepare("UPDATE keys SET revoked = 1 WHERE id = ? AND revoked = 0").run(id).changes) > 0,
    );
  }

  list(): KeyInfo[] {
    return this.#read("the keys could not be read", () =>
      (this.#db.prepare("SELECT * FROM keys ORDER BY created_at").all() as unknown as KeyRow[]).map(info),
    );
  }

  /** The principal a presented key stands for, or undefined for an unknown, malformed or revoked key. */
  verify(presented: string): Principal | undefined {
    const match = KEY.exec(presented);
    // Malformed keys cost the same digest and compare as well-formed ones.
    const row = match
      ? this.#read(
          "the key could not be checked",
          () => this.#db.prepare("SELECT * FROM keys WHERE id = ?").get(match[1] as string) as KeyRow | undefined,
        )
      : undefined;
    const expected = row ? Buffer.from(row.secret_sha256) : Buffer.alloc(32);
    const equal = timingSafeEqual(digest(match?.[2] ?? presented), expected);
    if (!row || !equal || row.revoked) return undefined;
    const { id, name, scopes, functions } = info(row);
    return { id, name, scopes: new Set(scopes), functions: functions ? new Set(functions) : undefined };
  }
}

function info(row: KeyRow): KeyInfo {
  return {
    id: row.id,
    name: row.name,
    scopes: JSON.parse(row.scopes) as Scope[],
    functions: row.functions ? (JSON.parse(row.functions) as string[]) : null,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revoked: row.revoked === 1,
  };
}
