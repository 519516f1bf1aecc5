/**
 * The audit log: one append-only record per admin operation and per
 * denial: who, what, which function, allowed or not, why, when. Kept in
 * `auth.db`; nothing in the host updates or deletes a record. Secrets never
 * enter it: a record names a key by id only.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Denial } from "../capabilities/kv.ts";

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

export class AuditLog {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
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

  record(entry: Omit<AuditRecord, "seq" | "at">): void {
    this.#insert.run(
      new Date().toISOString(),
      entry.principal,
      entry.action,
      entry.function,
      entry.allowed ? 1 : 0,
      entry.reason,
      entry.requestId,
      entry.ip,
    );
  }

  query(q: AuditQuery): AuditRecord[] {
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
