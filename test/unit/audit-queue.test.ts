/**
 * The audit log while auth.db cannot be written (a real SQLITE_FULL: the
 * database may not grow past its pages): records wait in memory, in order,
 * up to MAX_WAITING; later ones are dropped, counted, and named by one
 * record once the log can be written. Nothing throws to the caller.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog, MAX_WAITING } from "../../host/src/auth/audit.ts";
import { openAuthDb } from "../../host/src/auth/keys.ts";
import type { StorageFault, StoreName } from "../../host/src/store/storage-error.ts";

let dir: string | undefined;
let db: DatabaseSync | undefined;
let audit: AuditLog | undefined;
afterEach(async () => {
  audit?.close();
  db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const denial = (i: number) => ({
  principal: "anonymous",
  action: "GET /v1/functions",
  function: null,
  allowed: false,
  reason: `denial ${i}`,
  requestId: String(i),
  ip: "127.0.0.1",
});

describe("the audit log on a full disk", () => {
  it("keeps what it cannot write, drops and counts past the bound, and writes all it kept once it can", async () => {
    dir = await mkdtemp(join(tmpdir(), "joule-audit-"));
    db = openAuthDb(dir);
    const told: Array<[StoreName, StorageFault | "wrote"]> = [];
    audit = new AuditLog(db, {
      failed: (store, fault) => told.push([store, fault]),
      wrote: (store) => told.push([store, "wrote"]),
    });
    const pages = (db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
    db.exec(`PRAGMA max_page_count = ${pages}`);

    const first = new Date().toISOString();
    for (let i = 0; i < MAX_WAITING + 5; i++) audit.record(denial(i));
    // An allowed operation is written at once, or waits too: never an exception.
    expect(() => audit?.record({ ...denial(-1), allowed: true, reason: "ok" })).not.toThrow();
    expect(audit.flush()).toBe(false);
    expect([audit.waiting, audit.droppedTotal]).toEqual([MAX_WAITING, 6]);
    expect(told[0]).toEqual(["auth.db", { kind: "full", cause: "database or disk is full" }]);

    db.exec("PRAGMA max_page_count = 1073741823");
    expect(audit.flush()).toBe(true);
    expect(told.at(-1)).toEqual(["auth.db", "wrote"]);
    const { records, waiting } = audit.query({ limit: MAX_WAITING + 10 });
    expect(waiting).toBe(0);
    expect(records).toHaveLength(MAX_WAITING + 1);
    // Oldest first in order, with the time each happened; the newest record says what was dropped.
    expect(records.at(-1)).toMatchObject({ reason: "denial 0", requestId: "0" });
    expect((records.at(-1)?.at ?? "") >= first).toBe(true);
    expect(records[1]).toMatchObject({ reason: `denial ${MAX_WAITING - 1}` });
    expect(records[0]).toMatchObject({ principal: "host", action: "audit:dropped", allowed: false });
    expect(records[0]?.reason).toMatch(
      /^6 audit records were not kept \(between \S+ and \S+\): auth.db could not be written/,
    );
  });
});
