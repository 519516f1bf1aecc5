import { readFile } from "node:fs/promises";
import { expect, it, describe as suite } from "vitest";
import { FuelError } from "../../host/src/fuel/fuel-error.ts";
import { instrument, SLICE } from "../../host/src/fuel/instrument.ts";
import { call, metered, meteredBytes, plain, watModule } from "./harness.ts";

const fixture = (name: string) => readFile(new URL(`../fixtures/wat/${name}`, import.meta.url), "utf8");
const PLENTY = 1n << 40n;

const CASES: Record<string, number[]> = {
  block_br: [0, 1],
  loop_sum: [0, 1, 10, 1000],
  loop_then_trap: [0, 10],
  nested_loops: [1, 3, 20],
  if_else: [0, 1, 6],
  br_table: [0, 1, 2, 3, 99],
  fib: [0, 1, 10, 15],
  indirect: [0, 1, 2, 5],
  tail_call: [0, 10, 100_000],
  multi_value: [3, -4],
  select_global: [0, 1, 5],
  early_return: [0, 1],
  div: [1, 7, 0],
  unreachable_if: [0, 1],
  grow: [0, 1, 2, 100],
  bulk: [10, 500, 70_000],
  tables: [0, 1, 2],
  simd: [5, -1],
  sign_sat: [127, 128, 255],
};

suite("the fuel instrumenter", () => {
  it("gives the same results and traps as the original, for every control-flow construct", async () => {
    const original = await watModule(await fixture("control-flow.wat"));
    for (const [name, inputs] of Object.entries(CASES)) {
      for (const input of inputs) {
        // Fresh instances each time: memory, tables and globals change.
        const expected = call(() => (plain(original).exports[name] as (x: number) => unknown)(input));
        const { outcome, exhausted, used } = metered(original).run(name, [input], PLENTY);
        expect(outcome, `${name}(${input})`).toEqual(expected);
        expect(exhausted).toBe(false);
        if (outcome.ok) expect(used).toBeGreaterThan(0n);
      }
    }
  });

  it("meters exception handling", async () => {
    const original = await watModule(await fixture("exceptions.wat"));
    for (const name of ["try_catch", "try_table"]) {
      for (const input of [0, 5]) {
        const expected = call(() => (plain(original).exports[name] as (x: number) => unknown)(input));
        expect(expected.ok).toBe(true);
        expect(metered(original).run(name, [input], PLENTY).outcome, `${name}(${input})`).toEqual(expected);
      }
    }
  });

  it("succeeds with exactly enough fuel and fails with one unit less", async () => {
    const m = metered(await watModule(await fixture("control-flow.wat")));
    for (const [name, input] of [
      ["loop_sum", 100],
      ["fib", 12],
      ["bulk", 4096],
      ["grow", 1],
    ] as const) {
      const { used } = m.run(name, [input], PLENTY);
      const exact = metered(await watModule(await fixture("control-flow.wat"))).run(name, [input], used);
      expect(exact.exhausted, `${name} with exactly ${used}`).toBe(false);
      expect(exact.outcome.ok).toBe(true);
      const short = metered(await watModule(await fixture("control-flow.wat"))).run(name, [input], used - 1n);
      expect(short.exhausted, `${name} with ${used - 1n}`).toBe(true);
    }
  });

  it("never charges a trapping run more than the same run without the trap", async () => {
    const m = metered(await watModule(await fixture("control-flow.wat")));
    const fine = m.run("div", [5], PLENTY);
    const trapped = m.run("div", [0], PLENTY);
    expect(trapped.outcome).toMatchObject({ ok: false, error: expect.stringContaining("divide by zero") });
    expect(trapped.used).toBeLessThanOrEqual(fine.used);
    // An explicit trap stores the fuel first: charged exactly for what ran, the entry
    // segment (local.get, if); `unreachable` itself, like other structure, costs nothing.
    expect(m.run("unreachable_if", [1], PLENTY).used).toBe(2n);
  });

  it("loses less than one slice when a run traps", async () => {
    const m = metered(await watModule(await fixture("control-flow.wat")));
    const loop = m.run("loop_sum", [100_000], PLENTY).used;
    const trapped = m.run("loop_then_trap", [100_000], PLENTY);
    expect(trapped.outcome.ok).toBe(false);
    expect(loop - trapped.used).toBeLessThan(SLICE);
    // With small slices what it loses is small too: only what ran since the last one was drawn.
    const { bytes, exports } = instrument(await watModule(await fixture("control-flow.wat")), { slice: 100n });
    const sliced = meteredBytes(bytes, exports).run("loop_then_trap", [100_000], PLENTY, { slice: 100n });
    expect(sliced.outcome.ok).toBe(false);
    expect(loop - sliced.used).toBeLessThan(120n);
  });

  it("traps a runaway loop once the fuel runs out", async () => {
    const m = metered(await watModule(await fixture("control-flow.wat")));
    const run = m.run("loop_sum", [2_000_000_000], 10_000n);
    expect(run.exhausted).toBe(true);
    expect(run.outcome).toMatchObject({ ok: false, error: expect.stringContaining("unreachable") });
    // It stopped at the first check past the budget: within one loop iteration.
    expect(run.used - 10_000n).toBeLessThan(50n);
  });

  it("charges memory.grow per page and bulk memory per byte", async () => {
    const m = metered(await watModule(await fixture("control-flow.wat")));
    const grow0 = m.run("grow", [0], PLENTY).used;
    const grow2 = metered(await watModule(await fixture("control-flow.wat"))).run("grow", [2], PLENTY).used;
    expect(grow2 - grow0).toBe(2048n);
    const small = m.run("bulk", [16], PLENTY).used;
    const large = m.run("bulk", [16 * 1001], PLENTY).used;
    expect(large - small).toBe(2000n); // fill and copy: 1000 more units each
  });

  it("charges a huge 64-bit grow operand as a huge amount, never as a credit", async () => {
    for (const text of [
      `(module (table $t i64 1 funcref)
        (func (export "mint") (result i64) (table.grow $t (ref.null func) (i64.const -1000000000000000))))`,
      `(module (memory i64 1)
        (func (export "mint") (result i64) (memory.grow (i64.const -1))))`,
    ]) {
      const m = metered(await watModule(text));
      const run = m.run("mint", [], 1_000_000n);
      expect(run.used).toBeGreaterThan(0n);
      expect(run.exhausted).toBe(true);
      expect(m.port.fuel.value).toBeLessThan(0n);
    }
  });

  it("keeps a module's own export named like the fuel global", async () => {
    const original = await watModule(await fixture("own-fuel-export.wat"));
    const { exports, bytes } = instrument(original);
    expect(exports).toEqual({
      fuel: "joule:fuel.1",
      memoryLimit: "joule:memory-limit",
      memoryRefused: "joule:memory-refused",
    });
    const { instance, port } = meteredBytes(bytes, exports);
    expect((instance.exports["joule:fuel"] as WebAssembly.Global).value).toBe(5);
    expect(instance.exports["joule:fuel.1"]).toBe(port.fuel);
    expect((instance.exports.get as () => number)()).toBe(11);
  });

  it("refuses what it cannot decode, never passing it through unmetered", async () => {
    const original = await watModule(await fixture("control-flow.wat"));
    expect(() => instrument(original.subarray(0, original.length - 3))).toThrow(FuelError);
    expect(() => instrument(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]))).toThrow(
      /not a core WebAssembly module/,
    );
    const gc = await watModule(
      '(module (type $s (struct (field i32))) (func (export "f") (result i32) (i32.const 1)))',
    );
    expect(() => instrument(gc)).toThrow(expect.objectContaining({ kind: "unsupported" }));
    // The fuel imports are the host's: a module may not name them itself.
    const own = await watModule('(module (import "joule:fuel" "refill" (func)))');
    expect(() => instrument(own)).toThrow(expect.objectContaining({ kind: "unsupported" }));
  });

  it("keeps the names of functions that moved, for stack traces", async () => {
    const m = metered(
      await watModule(`(module
        (func $innermost (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
        (func (export "outer") (param i32) (result i32) (call $innermost (local.get 0))))`),
    );
    const run = m.run("outer", [0], PLENTY);
    expect(run.outcome.ok).toBe(false);
    let stack = "";
    try {
      (m.instance.exports.outer as (x: number) => number)(0);
    } catch (error) {
      stack = String((error as Error).stack);
    }
    expect(stack).toContain("innermost");
  });

  it("holds one budget across modules that share a fuel port", async () => {
    // Two instances, one calling the other through an import: as the core modules of a component.
    const callee = metered(
      await watModule(`(module (func (export "spin") (param $n i32) (local $i i32)
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))))`),
    );
    const { bytes, exports } = instrument(
      await watModule(`(module (import "callee" "spin" (func $spin (param i32)))
        (func (export "run") (param $n i32) (local $i i32)
          (loop $l (call $spin (local.get $n)) (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 10))))))`),
    );
    const caller = meteredBytes(bytes, exports, { callee: callee.instance.exports }, callee.port);
    const used = caller.run("run", [1000], PLENTY, { slice: 100n }).used;
    expect(caller.run("run", [1000], used, { slice: 100n })).toMatchObject({ used, exhausted: false });
    // One unit short: the last segments overdraw it without reaching a check, and the host notices.
    expect(caller.run("run", [1000], used - 1n, { slice: 100n })).toMatchObject({ used, exhausted: true });
    const half = caller.run("run", [1000], used / 2n, { slice: 100n });
    expect(half).toMatchObject({ exhausted: true, outcome: { ok: false } });
    // Stopped at the first check past the budget, whichever module was running.
    expect(half.used - used / 2n).toBeLessThan(20n);
  });
});
