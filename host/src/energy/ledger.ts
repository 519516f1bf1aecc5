/**
 * Energy budgets and the ledger of what every invocation used, in the data
 * dir (`energy.db`, node:sqlite, WAL, held by this process alone:
 * store/sqlite.ts). Budgets are per function and per principal, in
 * microjoules, with an optional refill period.
 *
 * An invocation first reserves what it could use at most (its fuel limit ×
 * joules-per-fuel) against every budget that applies, and is refused before
 * running if any cannot cover it; afterwards the reservation is replaced by
 * what it actually used. Reservations live in memory and are checked and
 * taken in one synchronous step, so concurrent invocations cannot overspend.
 *
 * The process owns the database (the data dir is locked), so budget rows are
 * kept in memory and what invocations used is checked against them there.
 * Charges (and period rollovers) are written behind, in order, in one
 * transaction per FLUSH_MS however many invocations settled (a commit per
 * request cost about 0.1 ms of the main thread, a third of a warm request);
 * anything that reads or changes the ledger's tables writes what is pending
 * first, and so does `close`. A crash of the process loses about the last
 * FLUSH_MS of charges, more while writes fail and are retried (WAL with
 * synchronous=NORMAL: not safe against a crash of the operating system).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { JouleError } from "../errors.ts";
import { probeWrite } from "../store/probes.ts";
import { openDatabase } from "../store/sqlite.ts";
import {
  guarded,
  type StorageFault,
  type StorageReporter,
  storageError,
  storageFault,
} from "../store/storage-error.ts";
import { periodMs } from "./duration.ts";

export type Scope = "function" | "principal";

export interface BudgetInput {
  microjoules: number;
  periodMs: number | null;
}

export interface BudgetStatus {
  scope: Scope;
  id: string;
  budget: { joules: number; periodMs: number | null } | null;
  /** Used in the current period (all time without a period). */
  usedJoules: number;
  reservedJoules: number;
  remainingJoules: number | null;
  refillAt: string | null;
  /** Used since the ledger began. */
  totalJoules: number;
  invocations: number;
}

export interface Reservation {
  fn: string;
  principal: string;
  microjoules: number;
  settled: boolean;
}

interface BudgetRow {
  limit_uj: number;
  period_ms: number | null;
  period_start: number;
  used_uj: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS budgets (
  scope TEXT NOT NULL,
  id TEXT NOT NULL,
  limit_uj INTEGER NOT NULL,
  period_ms INTEGER,
  period_start INTEGER NOT NULL,
  used_uj INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, id)
) STRICT;
CREATE TABLE IF NOT EXISTS totals (
  scope TEXT NOT NULL,
  id TEXT NOT NULL,
  used_uj INTEGER NOT NULL,
  invocations INTEGER NOT NULL,
  PRIMARY KEY (scope, id)
) STRICT;
CREATE TABLE IF NOT EXISTS charges (
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  function TEXT NOT NULL,
  principal TEXT NOT NULL,
  request_id TEXT NOT NULL,
  fuel INTEGER NOT NULL,
  energy_uj INTEGER NOT NULL
) STRICT;
`;

const toJoules = (uj: number) => uj / 1e6;

/** How long settled charges may wait in memory before they are committed. */
const FLUSH_MS = 50;

/** Charges that may wait while writes fail; past it, invocations are refused until one succeeds. */
const MAX_PENDING = 100_000;

/** A write waiting for the next flush: a settled charge, or a budget's period rolled forward. */
type PendingWrite =
  | { kind: "charge"; at: number; fn: string; principal: string; requestId: string; fuel: number; microjoules: number }
  | { kind: "refill"; scope: Scope; id: string; periodStart: number };

/** A budget as written in joule.json or the API: joules, and an optional refill period. */
export function budgetInput(budget: { joules: number; per?: string | undefined }): BudgetInput {
  return { microjoules: Math.round(budget.joules * 1e6), periodMs: budget.per ? periodMs(budget.per) : null };
}

export class EnergyLedger {
  readonly #db: DatabaseSync;
  readonly #reserved = new Map<string, number>();
  /** Budget rows by `scope:id`, read once; null: no budget. Kept equal to the table plus `#pending`. */
  readonly #budgets = new Map<string, BudgetRow | null>();
  /** Writes not yet committed, in the order they happened. */
  #pending: PendingWrite[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** Flushes that failed in a row: the retry backs off, and only the first is reported. */
  #failures = 0;
  /** What the last failed flush met, when it was the data dir's fault. */
  #fault: StorageFault | undefined;
  #closed = false;
  readonly #now: () => number;
  readonly #storage: StorageReporter | undefined;
  readonly #q: Record<
    "budget" | "upsertBudget" | "deleteBudget" | "setUsed" | "addUsed" | "total" | "addTotal" | "charge" | "list",
    StatementSync
  >;

  /** `storage` hears of writes that fail for the data dir's sake, and of the next that works. */
  constructor(dataDir: string, now: () => number = Date.now, storage?: StorageReporter) {
    this.#storage = storage;
    mkdirSync(dataDir, { recursive: true });
    this.#db = openDatabase(join(dataDir, "energy.db"), "process");
    this.#db.exec(SCHEMA);
    this.#now = now;
    this.#q = {
      budget: this.#db.prepare(
        "SELECT limit_uj, period_ms, period_start, used_uj FROM budgets WHERE scope = ? AND id = ?",
      ),
      upsertBudget: this.#db.prepare(
        `INSERT INTO budgets (scope, id, limit_uj, period_ms, period_start, used_uj) VALUES (?, ?, ?, ?, ?, 0)
         ON CONFLICT (scope, id) DO UPDATE SET limit_uj = excluded.limit_uj,
           period_start = CASE WHEN budgets.period_ms IS excluded.period_ms THEN budgets.period_start ELSE excluded.period_start END,
           used_uj = CASE WHEN budgets.period_ms IS excluded.period_ms THEN budgets.used_uj ELSE 0 END,
           period_ms = excluded.period_ms`,
      ),
      deleteBudget: this.#db.prepare("DELETE FROM budgets WHERE scope = ? AND id = ?"),
      setUsed: this.#db.prepare("UPDATE budgets SET period_start = ?, used_uj = ? WHERE scope = ? AND id = ?"),
      addUsed: this.#db.prepare("UPDATE budgets SET used_uj = used_uj + ? WHERE scope = ? AND id = ?"),
      total: this.#db.prepare("SELECT used_uj, invocations FROM totals WHERE scope = ? AND id = ?"),
      addTotal: this.#db.prepare(
        `INSERT INTO totals (scope, id, used_uj, invocations) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope, id) DO UPDATE SET used_uj = used_uj + excluded.used_uj,
           invocations = invocations + excluded.invocations`,
      ),
      charge: this.#db.prepare(
        "INSERT INTO charges (at, function, principal, request_id, fuel, energy_uj) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      list: this.#db.prepare("SELECT scope, id FROM budgets UNION SELECT scope, id FROM totals ORDER BY scope, id"),
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.flush();
    } finally {
      clearTimeout(this.#flushTimer);
      this.#db.close();
    }
  }

  setBudget(scope: Scope, id: string, input: BudgetInput): BudgetStatus {
    this.commit();
    this.#write("the budget could not be set", () =>
      this.#q.upsertBudget.run(scope, id, input.microjoules, input.periodMs, this.#now()),
    );
    this.#budgets.delete(`${scope}:${id}`);
    return this.status(scope, id);
  }

  removeBudget(scope: Scope, id: string): boolean {
    this.commit();
    this.#budgets.delete(`${scope}:${id}`);
    return this.#write(
      "the budget could not be removed",
      () => Number(this.#q.deleteBudget.run(scope, id).changes) > 0,
    );
  }

  #write<T>(what: string, work: () => T): T {
    const result = guarded("energy.db", what, work, this.#storage);
    this.#storage?.wrote("energy.db");
    return result;
  }

  /**
   * Commits the queued writes now, or throws JOULE_ERR_HOST_STORAGE (the
   * data dir's fault) or JOULE_ERR_HOST_NOT_READY (anything else): what
   * reads or changes budgets calls it first, so that the API says what is
   * wrong instead of a 500 and nothing is changed while the queue waits; the
   * queue keeps every write.
   */
  commit(): void {
    try {
      this.flush();
    } catch {
      throw this.#cannotWrite("nothing was changed; try again once it can");
    }
  }

  #cannotWrite(then: string): JouleError {
    const what = `the energy ledger cannot commit the ${this.#pending.length} writes waiting (${then})`;
    if (this.#fault) return storageError("energy.db", this.#fault, what);
    return new JouleError("JOULE_ERR_HOST_NOT_READY", `${what}; the host's warnings say why`);
  }

  /** Commits what waits, then a one-row write: whether energy.db can be written again (storage-health.ts). */
  probe(): void {
    this.flush();
    probeWrite(this.#db);
  }

  /**
   * Commits the writes queued since the last flush, in order, in one
   * transaction. They leave the queue only once committed: a failed flush
   * leaves them for the next one (the cached rows count them already).
   */
  flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#pending.length === 0) return;
    const writes = this.#pending;
    // Charges summed per budget: two updates per budget per flush, not per charge.
    const sums = new Map<string, { scope: Scope; id: string; microjoules: number; invocations: number }>();
    const add = (scope: Scope, id: string, microjoules: number) => {
      const key = `${scope}:${id}`;
      const sum = sums.get(key);
      if (sum) {
        sum.microjoules += microjoules;
        sum.invocations++;
      } else sums.set(key, { scope, id, microjoules, invocations: 1 });
    };
    const writeSum = (key: string) => {
      const sum = sums.get(key);
      if (!sum) return;
      this.#q.addUsed.run(sum.microjoules, sum.scope, sum.id);
      this.#q.addTotal.run(sum.scope, sum.id, sum.microjoules, sum.invocations);
      sums.delete(key);
    };
    try {
      this.#db.exec("BEGIN");
      for (const w of writes) {
        if (w.kind === "refill") {
          // The charges before a refill belong to the old period: written before it resets the budget.
          writeSum(`${w.scope}:${w.id}`);
          this.#q.setUsed.run(w.periodStart, 0, w.scope, w.id);
          continue;
        }
        this.#q.charge.run(w.at, w.fn, w.principal, w.requestId, w.fuel, w.microjoules);
        add("function", w.fn, w.microjoules);
        add("principal", w.principal, w.microjoules);
      }
      for (const key of [...sums.keys()]) writeSum(key);
      this.#db.exec("COMMIT");
    } catch (error) {
      // SQLite may have rolled back on its own already (a full disk, an I/O error).
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch {}
      const before = this.#fault;
      this.#fault = storageFault(error);
      // Told once per run of failures, whichever caller met the first (and again if the fault
      // changes): the data dir's faults to the storage reporter, which logs them, others as a warning.
      const first = ++this.#failures === 1 || before?.kind !== this.#fault?.kind;
      if (first && this.#fault && this.#storage) this.#storage.failed("energy.db", this.#fault);
      else if (first) {
        process.emitWarning(
          `energy ledger: ${writes.length} writes (charges, refills) not committed, retrying: ${(error as Error).message}`,
        );
      }
      this.#schedule();
      throw error;
    }
    this.#pending = [];
    this.#failures = 0;
    this.#fault = undefined;
    this.#storage?.wrote("energy.db");
  }

  /** Whether invocations are refused: too many writes wait for the data dir (readiness says so too). */
  get refusing(): boolean {
    return this.#pending.length >= MAX_PENDING;
  }

  /** Writes not yet committed, nearly all charges (a metric: it grows only while writes fail). */
  get pendingCharges(): number {
    return this.#pending.length;
  }

  #schedule(): void {
    if (this.#closed) return;
    // 50 ms, then twice as long after each failed flush, up to 5 s.
    const delay = Math.min(FLUSH_MS * 2 ** this.#failures, 5000);
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      try {
        this.flush();
      } catch {
        // Warned about in flush; retried later.
      }
    }, delay).unref();
  }

  /** The budget row with its period rolled forward to now (a refill resets what was used). */
  #current(scope: Scope, id: string): BudgetRow | undefined {
    const key = `${scope}:${id}`;
    let row = this.#budgets.get(key);
    if (row === undefined) {
      const read = () => this.#q.budget.get(scope, id) as BudgetRow | undefined;
      row = guarded("energy.db", "the budget could not be read", read, this.#storage) ?? null;
      this.#budgets.set(key, row);
    }
    if (!row || row.period_ms === null) return row ?? undefined;
    const now = this.#now();
    if (now < row.period_start + row.period_ms) return row;
    // Queued after the charges of the old period, so those still count against it when written.
    const periods = Math.floor((now - row.period_start) / row.period_ms);
    row.period_start += periods * row.period_ms;
    row.used_uj = 0;
    this.#pending.push({ kind: "refill", scope, id, periodStart: row.period_start });
    this.#schedule();
    return row;
  }

  /**
   * Reserves `microjoules` against the function's and the principal's
   * budgets, or throws JOULE_ERR_ENERGY_INSUFFICIENT naming the one that
   * cannot cover it. Nothing is reserved unless all can.
   */
  reserve(fn: string, principal: string, microjoules: number): Reservation {
    if (this.refusing) throw this.#cannotWrite("invocations are refused until it can");
    const keys: Array<[Scope, string]> = [
      ["function", fn],
      ["principal", principal],
    ];
    for (const [scope, id] of keys) {
      const row = this.#current(scope, id);
      if (!row) continue;
      const reserved = this.#reserved.get(`${scope}:${id}`) ?? 0;
      const remaining = row.limit_uj - row.used_uj - reserved;
      if (microjoules > remaining) {
        const refillAt = row.period_ms === null ? null : new Date(row.period_start + row.period_ms).toISOString();
        throw new JouleError(
          "JOULE_ERR_ENERGY_INSUFFICIENT",
          `the ${scope} ${id} has ${toJoules(Math.max(0, remaining))} J of energy left and this invocation may use up to ${toJoules(microjoules)} J (limits.fuel × joules-per-fuel)${refillAt ? `; it refills at ${refillAt}` : ""}`,
          {
            scope,
            id,
            remainingJoules: toJoules(Math.max(0, remaining)),
            neededJoules: toJoules(microjoules),
            refillAt,
          },
        );
      }
    }
    for (const [scope, id] of keys) {
      const key = `${scope}:${id}`;
      this.#reserved.set(key, (this.#reserved.get(key) ?? 0) + microjoules);
    }
    return { fn, principal, microjoules, settled: false };
  }

  /** Replaces a reservation by what the invocation used, and records the charge. */
  settle(reservation: Reservation, used: { microjoules: number; fuel: number; requestId: string }): void {
    if (this.#closed) throw new Error("the energy ledger is closed");
    if (reservation.settled) return;
    reservation.settled = true;
    for (const [scope, id] of [
      ["function", reservation.fn],
      ["principal", reservation.principal],
    ] as const) {
      const key = `${scope}:${id}`;
      const left = (this.#reserved.get(key) ?? 0) - reservation.microjoules;
      if (left > 0) this.#reserved.set(key, left);
      else this.#reserved.delete(key);
    }
    for (const row of [this.#current("function", reservation.fn), this.#current("principal", reservation.principal)])
      if (row) row.used_uj += used.microjoules;
    this.#pending.push({
      kind: "charge",
      at: this.#now(),
      fn: reservation.fn,
      principal: reservation.principal,
      requestId: used.requestId,
      fuel: used.fuel,
      microjoules: used.microjoules,
    });
    this.#schedule();
  }

  /** Whether a budget bounds `id`'s energy. */
  hasBudget(scope: Scope, id: string): boolean {
    return this.#current(scope, id) !== undefined;
  }

  status(scope: Scope, id: string): BudgetStatus {
    // Committed first, so that the totals read below count every settled charge.
    this.commit();
    const row = this.#current(scope, id);
    const total = guarded(
      "energy.db",
      "the ledger could not be read",
      () => this.#q.total.get(scope, id),
      this.#storage,
    ) as { used_uj: number; invocations: number } | undefined;
    const reserved = this.#reserved.get(`${scope}:${id}`) ?? 0;
    const used = row ? row.used_uj : (total?.used_uj ?? 0);
    return {
      scope,
      id,
      budget: row ? { joules: toJoules(row.limit_uj), periodMs: row.period_ms } : null,
      usedJoules: toJoules(used),
      reservedJoules: toJoules(reserved),
      remainingJoules: row ? toJoules(Math.max(0, row.limit_uj - row.used_uj - reserved)) : null,
      refillAt: row && row.period_ms !== null ? new Date(row.period_start + row.period_ms).toISOString() : null,
      totalJoules: toJoules(total?.used_uj ?? 0),
      invocations: total?.invocations ?? 0,
    };
  }

  list(): BudgetStatus[] {
    this.commit();
    const all = guarded("energy.db", "the ledger could not be read", () => this.#q.list.all(), this.#storage);
    return (all as Array<{ scope: Scope; id: string }>).map(({ scope, id }) => this.status(scope, id));
  }
}
