/**
 * The data dir failing under a running host, for real: a small tmpfs filled
 * to the last page, then made read-only, in a mount namespace of the host's
 * own (test/support/fault-host.ts). Through each fault: deploys and key
 * creation answer 503 JOULE_ERR_HOST_STORAGE naming the store, a bad key
 * still 401, a kv write the guest's `other` error, another function keeps
 * answering, /readyz and /metrics name the store, the log says it once.
 * Afterwards the host recovers by itself and nothing it acknowledged is lost.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.ts";
import { EXT4_MOUNT, ext4Skip, type FaultHost, faultSkip, startFaultHost } from "../support/fault-host.ts";
import { componentPath, reachDir } from "../support/host.ts";

const skip = faultSkip();
if (skip) console.warn(`storage fault tests skipped: ${skip}`);
const skipExt4 = ext4Skip();
if (skipExt4 && !skip) console.warn(`the ext4 storage fault test skipped: ${skipExt4}`);

const BAD_KEY = `jk_${"0".repeat(16)}_${"x".repeat(43)}`;
const REACH = {
  public: true,
  capabilities: { kv: ["cache"], outboundHttp: ["http://127.0.0.1:9"], files: { "/config.json": "config.json" } },
};

let h: FaultHost;
/** tiny's answers with 200, which energy.db must count in the end. */
let tinyServed = 0;

const kv = async (query: Record<string, string>) =>
  (await h.anonymous(`/fn/reach/kv?${new URLSearchParams({ store: "cache", ...query })}`)).json();
const tiny = async () => {
  const response = await h.anonymous("/fn/tiny/");
  if (response.status === 200) tinyServed++;
  return response.status;
};
const makeKey = () =>
  h.fetch("/v1/keys", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "during", scopes: ["functions:invoke"] }),
  });
const error = async (response: Response) => ({ status: response.status, ...(await response.json()).error });
const readyz = async () => {
  const response = await h.anonymous("/readyz");
  return { http: response.status, ...(await response.json()) };
};
/** A value of /metrics; waits for it, since workers report their faults asynchronously. */
const metric = (pattern: RegExp) =>
  eventually(async () => {
    const value = pattern.exec(await (await h.fetch("/metrics")).text())?.[1];
    if (value === undefined) throw new Error(`no ${pattern} in /metrics`);
    return Number(value);
  });
const logged = (msg: string, store: string) =>
  h.logs().filter((line) => String(line.msg).startsWith(msg) && line.store === store).length;

beforeAll(async () => {
  if (skip) return;
  h = await startFaultHost({ sizeMb: 48 });
  const reach = await h.deploy("reach", componentPath("reach"), REACH, {
    "/config.json": join(reachDir(), "config.json"),
  });
  expect(reach.status, await reach.text()).toBe(201);
  expect((await h.deploy("tiny", componentPath("tiny"), { public: true })).status).toBe(201);
});
afterAll(() => h?.close());

describe.skipIf(skip)("a data dir that fails", () => {
  it("maps none of its files into the host (a write the kernel cannot back would be SIGBUS)", async () => {
    expect(await kv({ op: "set", key: "mapped", value: "v" })).toEqual({ ok: true });
    const maps = await h.sh(`cat /proc/${h.pid}/maps`);
    expect(maps.stdout).toContain("node"); // the host's own mappings are there
    expect(maps.stdout).not.toContain(h.dataDir);
  });

  it("when full: coded 503s, 401 for a bad key, kv's error to the guest, others still served; then recovers", async () => {
    // Acknowledged before the fault.
    expect(await kv({ op: "set", key: "before", value: "kept" })).toEqual({ ok: true });
    const kept = await makeKey();
    expect(kept.status).toBe(201);
    const keptKey = (await kept.json()).key as string;
    for (let i = 0; i < 3; i++) expect(await tiny()).toBe(200);

    await h.fill();

    // A value larger than anything written so far: the WAL must grow, and cannot.
    expect(await kv({ op: "set", key: "big", size: String(512 * 1024) })).toEqual({
      ok: false,
      error: expect.stringMatching(/^kv other: the host's storage is full \(database or disk is full\)/),
    });
    expect(await kv({ op: "get", key: "before" })).toEqual({ ok: true, value: "kept" });
    for (let i = 0; i < 3; i++) {
      expect(
        await error(await h.fetch("/v1/functions", { headers: { authorization: `Bearer ${BAD_KEY}` } })),
      ).toMatchObject({
        status: 401,
        code: "JOULE_ERR_REQUEST_UNAUTHORIZED",
      });
      expect(await error(await makeKey())).toMatchObject({
        status: 503,
        code: "JOULE_ERR_HOST_STORAGE",
        details: { store: "auth.db", kind: "full" },
      });
    }
    expect(await error(await h.deploy("trap", componentPath("trap"), { public: true }))).toMatchObject({
      status: 503,
      code: "JOULE_ERR_HOST_STORAGE",
      details: { store: "functions", kind: "full" },
    });
    // What needs no write goes on: another function, the admin API's reads, an existing key.
    for (let i = 0; i < 5; i++) expect(await tiny()).toBe(200);
    expect((await h.fetch("/v1/functions")).status).toBe(200);
    expect((await h.fetch("/v1/functions", { headers: { authorization: `Bearer ${keptKey}` } })).status).toBe(403);

    // Still ready: invocations are served.
    await eventually(async () =>
      expect(await readyz()).toMatchObject({
        http: 200,
        status: "ready",
        storage: {
          "auth.db": expect.stringMatching(/^full since \S+: database or disk is full$/),
          "kv.db": expect.stringMatching(/^full since/),
          functions: expect.stringMatching(/^full since \S+: ENOSPC/),
        },
      }),
    );
    expect(await metric(/^joule_storage_failing\{store="auth.db"\} (\d+)$/m)).toBe(1);
    expect(await metric(/^joule_storage_failures_total\{store="auth.db",kind="full"\} (\d+)$/m)).toBeGreaterThanOrEqual(
      3,
    );
    expect(await metric(/^joule_storage_failures_total\{store="kv.db",kind="full"\} (\d+)$/m)).toBeGreaterThanOrEqual(
      1,
    );
    expect(await metric(/^joule_audit_waiting_records (\d+)$/m)).toBeGreaterThanOrEqual(3);
    // Once per store, not once per request.
    expect(logged("storage failing", "auth.db")).toBe(1);
    expect(logged("storage failing", "functions")).toBe(1);

    await h.unfill();

    // Found healthy by the host's own probes, with no request needed.
    await eventually(async () => expect((await readyz()).storage).toBeUndefined(), { timeoutMs: 5000 });
    expect(logged("storage recovered", "auth.db")).toBe(1);
    expect(await metric(/^joule_storage_failing\{store="auth.db"\} (\d+)$/m)).toBe(0);
    expect(await metric(/^joule_audit_waiting_records (\d+)$/m)).toBe(0);
    expect(await kv({ op: "set", key: "big", size: String(512 * 1024) })).toEqual({ ok: true });
    expect((await makeKey()).status).toBe(201);
    expect((await h.deploy("trap", componentPath("trap"), { public: true })).status).toBe(201);

    // Nothing acknowledged is lost: the value, the key, every charge, and the denials made meanwhile.
    expect(await kv({ op: "get", key: "before" })).toEqual({ ok: true, value: "kept" });
    expect((await h.anonymous("/fn/tiny/", { headers: { authorization: `Bearer ${keptKey}` } })).status).toBe(200);
    tinyServed++;
    const energy = await (await h.fetch("/v1/energy/functions/tiny")).json();
    expect(energy.invocations).toBe(tinyServed);
    const audit = await (await h.fetch("/v1/audit?allowed=false&limit=1000")).json();
    expect(audit.waiting).toBeUndefined();
    expect(audit.records.filter((r: { reason: string }) => r.reason === "invalid credentials")).toHaveLength(3);
  });

  it("when read-only: coded 503s naming it, 401 for a bad key, others still served; then recovers", async () => {
    // `mount -o remount,ro` is refused (EBUSY) while a process holds files there open for writing, as
    // the host does: what a running host meets is a read-only mount over its data dir, for every file
    // it opens from then on.
    expect((await h.sh('mount --bind -o ro "$DIR" "$DIR"')).code).toBe(0);
    expect((await h.sh('touch "$DIR/x"')).stderr).toMatch(/Read-only file system/);

    expect(await error(await makeKey())).toMatchObject({
      status: 503,
      code: "JOULE_ERR_HOST_STORAGE",
      details: { store: "auth.db", kind: "read-only" },
    });
    expect(await error(await h.deploy("spin-ro", componentPath("spin"), { public: true }))).toMatchObject({
      status: 503,
      code: "JOULE_ERR_HOST_STORAGE",
      details: { store: "functions", kind: "read-only" },
    });
    expect(
      await error(await h.fetch("/v1/functions", { headers: { authorization: `Bearer ${BAD_KEY}` } })),
    ).toMatchObject({
      status: 401,
    });
    // A connection the worker opened before writes on (the file was opened writable); either way, no trap.
    const put = await kv({ op: "set", key: "during-ro", value: "v" });
    expect(put.ok === true || /^kv other: the host's storage is/.test(put.error)).toBe(true);
    for (let i = 0; i < 3; i++) expect(await tiny()).toBe(200);
    const ready = await readyz();
    expect([ready.http, ready.status]).toEqual([200, "ready"]);
    expect(ready.storage).toMatchObject({
      "auth.db": expect.stringMatching(/^read-only since \S+: EROFS/),
      functions: expect.stringMatching(/^read-only since \S+: EROFS/),
    });
    expect(await metric(/^joule_storage_failing\{store="functions"\} (\d+)$/m)).toBe(1);

    // Writable again (lazily: the host has files open through the read-only mount).
    expect((await h.sh('umount -l "$DIR"')).code).toBe(0);
    await eventually(async () => expect((await readyz()).storage).toBeUndefined(), { timeoutMs: 5000 });
    expect((await makeKey()).status).toBe(201);
    expect((await h.deploy("spin-ro", componentPath("spin"), { public: true })).status).toBe(201);
    expect(await kv({ op: "set", key: "after-ro", value: "w" })).toEqual({ ok: true });
    expect(await kv({ op: "get", key: "before" })).toEqual({ ok: true, value: "kept" });
    expect(h.exited()).toBeUndefined();
  });
});

describe.skipIf(skipExt4)("a data dir made unwritable on ext4", () => {
  let e: FaultHost;
  beforeAll(async () => {
    e = await startFaultHost({ mount: EXT4_MOUNT });
    expect((await e.deploy("tiny", componentPath("tiny"), { public: true })).status).toBe(201);
  });
  afterAll(() => e?.close());

  it("does not kill the host (it died of SIGBUS when SQLite's -shm was mapped), and recovers", async () => {
    const makeKey = () =>
      e.fetch("/v1/keys", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ scopes: ["functions:invoke"] }),
      });
    // A write last: the next read of auth.db would set a new read mark in a WAL index (-shm).
    expect((await makeKey()).status).toBe(201);
    // Immutable files refuse writes, to mapped pages too; synced, so the next write to one faults.
    expect((await e.sh('chattr -R +i "$DIR" && sync')).code).toBe(0);

    for (let i = 0; i < 3; i++) {
      expect((await e.fetch("/v1/functions", { headers: { authorization: `Bearer ${BAD_KEY}` } })).status).toBe(401);
      expect((await e.fetch("/v1/functions")).status).toBe(200);
      expect((await e.anonymous("/fn/tiny/")).status).toBe(200);
    }
    expect(await error(await makeKey())).toMatchObject({
      status: 503,
      code: "JOULE_ERR_HOST_STORAGE",
      details: { store: "auth.db" },
    });
    expect(e.exited()).toBeUndefined();

    expect((await e.sh('chattr -R -i "$DIR"')).code).toBe(0);
    await eventually(async () => expect((await (await e.anonymous("/readyz")).json()).storage).toBeUndefined());
    expect((await makeKey()).status).toBe(201);
  });
});
