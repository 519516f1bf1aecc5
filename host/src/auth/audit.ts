/**
 * The audit log: one append-only record per admin operation and per
 * denial: who, what, which function, allowed or not, why, when. Kept in
 * `auth.db`; nothing in the host updates or deletes a record. Secrets never
 * enter it: a record names a key by id only.
 *
 * Records pass through a queue, so that neither a slow disk nor a failing
 * one changes what a request answers (a denial stays a 401 or 403, never a
 * 500). An allowed operation is written at once; denials, which come at
 * whatever rate a caller sends them, within DENIALS_WAIT_MS, many in one
 * transaction (auth.db syncs every transaction: store/sqlite.ts). While
 * auth.db cannot be written the queue keeps up to MAX_WAITING records and
 * tries again every second; past that, new records are dropped and counted,
 * and the log gets one record saying how many and when, once it can be
 * written. Records keep the time they happened. A crash, or a stop while
 * the disk still fails, loses what waits (at most DENIALS_WAIT_MS of
 * denials while the disk works).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Denial } from "../capabilities/kv.ts";
import { probeWrite } from "../store/probes.ts";
import {
  guarded,
  refine,
  type StorageFault,
  type StorageReporter,
  storageError,
  storageFault,
} from "../store/storage-error.ts";

/** Records kept while auth.db cannot be written, about 300 bytes each. */
export const MAX_WAITING = 10_000;
const DENIALS_WAIT_MS = 50;
const RETRY_MS = 1000;

export interface AuditRecord {
  seq: number;
  at: string;
  principal: string;
  action: string;
  function: string | null;
  allowed: boolean;
  reason: string;
  requestId: string | null;
  ip: string | null;
}

export interface AuditQuery {
  principal?: string | undefined;
  function?: string | undefined;
  action?: string | undefined;
  requestId?: string | undefined;
  allowed?: boolean | undefined;
  since?: string | undefined;
  /** Only records of these functions (a key limited to them). */
  functions?: readonly string[] | undefined;
  limit: number;
}

interface AuditRow {
  seq: number;
  at: string;
  principal: string;
  action: string;
  function: string | null;
  allowed: number;
  reason: string;
  request_id: string | null;
  ip: string | null;
}

type Waiting = Omit<AuditRecord, "seq">;

export class AuditLog {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #storage: StorageReporter | undefined;
  #waiting: Waiting[] = [];
  /** Records dropped because MAX_WAITING waited already: how many, the first and last time. */
  #dropped: { count: number; first: string; last: string } | undefined;
  /** Dropped since the host started (a metric). */
  droppedTotal = 0;
  #timer: NodeJS.Timeout | undefined;
  /** What the last failed write met. */
  #fault: StorageFault | undefined;
  readonly #path: string | undefined;
  #closed = false;

  /** `storage` hears of writes that fail for the data dir's sake, and of the next that works. */
  constructor(db: DatabaseSync, storage?: StorageReporter) {
    this.#db = db;
    this.#storage = storage;
    this.#path = db.location() ?? undefined;
    db.exec(`
      CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        function TEXT,
        allowed INTEGER NOT NULL,
        reason TEXT NOT NULL,
        request_id TEXT,
        ip TEXT
      ) STRICT;
      CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    `);
    this.#insert = db.prepare(
      "INSERT INTO audit (at, principal, action, function, allowed, reason, request_id, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
  }

  /** A capability request the host refused a function: who asked, and the denial in words. */
  recordDenial(
    denial: Denial,
    entry: { principal: string; function: string; requestId: string; ip: string | null },
    context = "",
  ): void {
    this.record({
      ...entry,
      action: `${denial.capability}:${denial.operation}`,
      allowed: false,
      reason: `${context}${denial.capability} ${denial.resource} ${denial.reason ?? "not granted"}`,
    });
  }

  /** Records an entry: an allowed operation at once, a denial within DENIALS_WAIT_MS. Never throws for the disk. */
  record(entry: Omit<AuditRecord, "seq" | "at">): void {
    const at = new Date().toISOString();
    if (this.#waiting.length >= MAX_WAITING) {
      this.droppedTotal++;
      this.#dropped = { count: (this.#dropped?.count ?? 0) + 1, first: this.#dropped?.first ?? at, last: at };
      return;
    }
    this.#waiting.push({ at, ...entry });
    if (entry.allowed) this.flush();
    else this.#schedule(DENIALS_WAIT_MS);
  }

  /** Records waiting to be written (a metric: it grows only while auth.db cannot be written). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Writes what waits, in order, in one transaction, with a record of any
   * that were dropped; returns whether the queue is empty. A storage fault
   * leaves the queue as it was and is tried again; anything else is thrown.
   */
  flush(): boolean {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#waiting.length === 0 && !this.#dropped) return true;
    const rows = this.#waiting;
    const dropped = this.#dropped;
    try {
      this.#db.exec("BEGIN");
      for (const row of rows) this.#write(row);
      if (dropped) {
        this.#write({
          at: dropped.first,
          principal: "host",
          action: "audit:dropped",
          function: null,
          allowed: false,
          reason: `${dropped.count} audit records were not kept (between ${dropped.first} and ${dropped.last}): auth.db could not be written and ${MAX_WAITING} records were waiting already`,
          requestId: null,
          ip: null,
        });
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch {}
      const found = storageFault(error);
      if (!found) throw error;
      const fault = refine(found, this.#path);
      this.#fault = fault;
      this.#storage?.failed("auth.db", fault);
      this.#schedule(RETRY_MS);
      return false;
    }
    this.#waiting = [];
    this.#dropped = undefined;
    this.#storage?.wrote("auth.db");
    return true;
  }

  /** Writes what waits, then a one-row write: whether auth.db can be written again (storage-health.ts). */
  probe(): void {
    if (!this.flush()) throw storageError("auth.db", this.#fault as StorageFault, "the audit records waiting");
    guarded("auth.db", "probe", () => probeWrite(this.#db), undefined, this.#path);
  }

  /** Writes what waits; what cannot be written is lost, and says so. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (!this.flush() && this.#waiting.length > 0)
      process.emitWarning(`audit log: ${this.#waiting.length} records could not be written before the host stopped`);
  }

  #write(row: Waiting): void {
    this.#insert.run(
      row.at,
      row.principal,
      row.action,
      row.function,
      row.allowed ? 1 : 0,
      row.reason,
      row.requestId,
      row.ip,
    );
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.flush();
      } catch (error) {
        process.emitWarning(`audit log: records not written: ${(error as Error).message}`);
      }
    }, ms).unref();
  }

  /** Records matching `q`, newest first, after writing what waits; `waiting` counts records not written yet. */
  query(q: AuditQuery): { records: AuditRecord[]; waiting: number } {
    this.flush();
    return {
      records: guarded("auth.db", "the audit log could not be read", () => this.#select(q), this.#storage, this.#path),
      waiting: this.#waiting.length,
    };
  }

  #select(q: AuditQuery): AuditRecord[] {
    const filters: Array<[string, string | number | undefined]> = [
      ["principal = ?", q.principal],
      ["function = ?", q.function],
      ["action = ?", q.action],
      ["request_id = ?", q.requestId],
      ["allowed = ?", q.allowed === undefined ? undefined : q.allowed ? 1 : 0],
      ["at >= ?", q.since],
    ];
    const used = filters.filter(([, value]) => value !== undefined);
    const where = used.map(([clause]) => clause);
    const args = used.map(([, value]) => value as string | number);
    if (q.functions) {
      where.push(`function IN (${q.functions.map(() => "?").join(", ") || "NULL"})`);
      args.push(...q.functions);
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, q.limit) as unknown as AuditRow[]).map((r) => ({
      seq: r.seq,
      at: r.at,
      principal: r.principal,
      action: r.action,
      function: r.function,
      allowed: r.allowed === 1,
      reason: r.reason,
      requestId: r.request_id,
      ip: r.ip,
    }));
  }
}
