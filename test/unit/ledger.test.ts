/**
 * The energy ledger's writes behind: what a flush leaves in energy.db is
 * what the cached rows said, read back by a new ledger on the same dir.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EnergyLedger } from "../../host/src/energy/ledger.ts";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the energy ledger", () => {
  it("writes a period's refill between the charges before and after it, summed per budget", async () => {
    dir = await mkdtemp(join(tmpdir(), "joule-ledger-"));
    let now = 0;
    const ledger = new EnergyLedger(dir, () => now);
    ledger.setBudget("function", "f", { microjoules: 10_000_000, periodMs: 1000 });
    const charge = (microjoules: number, requestId: string) =>
      ledger.settle(ledger.reserve("f", "p", microjoules), { microjoules, fuel: 1, requestId });
    charge(1_000_000, "a");
    charge(1_000_000, "b");
    now = 1500; // the next reservation rolls the period forward: a refill queued between the charges
    charge(2_000_000, "c");
    ledger.close();

    const reopened = new EnergyLedger(dir, () => now);
    try {
      expect(reopened.status("function", "f")).toMatchObject({ usedJoules: 2, totalJoules: 4, invocations: 3 });
      expect(reopened.status("principal", "p")).toMatchObject({ totalJoules: 4, invocations: 3 });
    } finally {
      reopened.close();
    }
  });
});
