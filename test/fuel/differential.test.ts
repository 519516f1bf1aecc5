/**
 * Fuel is exact: on hand-written modules, the production instrumenter
 * charges, to the unit, what the reference counter (reference.ts) counts
 * for every run that completes, and within TRAP_BOUND for runs that trap;
 * and a mutant of its output with any one charge dropped or doubled is
 * caught. (The binaryen fuzz modules are in fuzz.test.ts, the JS engine in
 * js-guests.test.ts.)
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { instrument } from "../../host/src/fuel/instrument.ts";
import { disagreements, meteredBytes, watModule } from "./harness.ts";
import { countCharges, mutateCharge } from "./mutant.ts";

const fixture = (name: string) => readFile(new URL(`../fixtures/wat/${name}`, import.meta.url), "utf8");

const CONTROL_FLOW: Record<string, number[]> = {
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

const METERING: Record<string, number[][]> = {
  early_exit: [[0], [5], [999], [5000]],
  calls_in_loop: [[1], [50]],
  call_ref: [[21]],
  mutual_tail: [[0], [7], [300_000]],
  tail_indirect: [[1], [20]],
  dispatch: [[1], [4], [1000]],
  loop_params: [[0], [1], [100]],
  catch_in_loop: [[1], [10], [100]],
  try_table_loop: [[1], [10], [100]],
  import_throws: [[1], [25]],
  land_at_end: [[3], [4]],
  globals_locals: [
    [1, 2],
    [40, 2],
  ],
  funcref_global: [[41]],
  grow_fill: [[1], [5]],
  trap_in_loop: [[10], [10_000]],
  trap_deep: [[10], [5000]],
};

function calls(cases: Record<string, number[][]>): Array<[string, unknown[]]> {
  return Object.entries(cases).flatMap(([name, inputs]) => inputs.map((args): [string, unknown[]] => [name, args]));
}

/** The imports metering.wat needs: a log, an import that throws now and then, a base address. */
function hostImports(): WebAssembly.Imports {
  const logged: number[] = [];
  return {
    host: {
      log: (x: number) => void logged.push(x),
      fail: (x: number) => {
        if (x % 2 === 0) throw new Error(`fail ${x}`);
      },
      base: 64,
    },
  };
}

/** `depth` blocks nested in a loop, left by br_table to a depth chosen by the input. */
function deepNesting(depth: number): string {
  const labels = Array.from({ length: depth }, (_, i) => i).join(" ");
  return `(module (func (export "deep") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $next
      ${"(block ".repeat(depth)}
        (br_table ${labels} (i32.rem_u (local.get $i) (i32.const ${depth})))
      ${")(local.set $acc (i32.add (local.get $acc) (i32.const 1)))".repeat(depth)}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))`;
}

describe("fuel against the reference counter", () => {
  it("agrees on every control-flow construct", async () => {
    const original = await watModule(await fixture("control-flow.wat"));
    const list = Object.entries(CONTROL_FLOW).flatMap(([name, inputs]) =>
      inputs.map((x): [string, unknown[]] => [name, [x]]),
    );
    // Fresh pairs per call: memory, tables and globals change.
    for (const call of list) expect(disagreements(original, [call])).toEqual([]);
  });

  it("agrees on both exception-handling forms", async () => {
    const original = await watModule(await fixture("exceptions.wat"));
    for (const name of ["try_catch", "try_table"]) {
      expect(
        disagreements(original, [
          [name, [0]],
          [name, [5]],
        ]),
      ).toEqual([]);
    }
  });

  it("agrees on loops with early exits, calls in loops, tail calls, br_table, exceptions, moved indices", async () => {
    const original = await watModule(await fixture("metering.wat"));
    for (const call of calls(METERING)) expect(disagreements(original, [call], hostImports)).toEqual([]);
  });

  it("agrees on deep nesting", async () => {
    const original = await watModule(deepNesting(300));
    expect(
      disagreements(original, [
        ["deep", [1]],
        ["deep", [1000]],
      ]),
    ).toEqual([]);
  });

  it("charges a completed run what it counted even when the budget is given out in small slices", async () => {
    const original = await watModule(await fixture("metering.wat"));
    const tiny = (bytes: Uint8Array, imports: WebAssembly.Imports) => {
      const { bytes: code, exports } = instrument(bytes, { slice: 7n });
      const m = meteredBytes(code, exports, imports);
      return { ...m, run: (name: string, args: unknown[], budget: bigint) => m.run(name, args, budget, { slice: 5n }) };
    };
    for (const call of calls(METERING)) expect(disagreements(original, [call], hostImports, tiny)).toEqual([]);
  });
});

describe("the mutation test", () => {
  // Every segment with a cost runs for these inputs: so every charge must matter.
  const SOURCE = `(module
    (func $fib (param $n i32) (result i32)
      (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
        (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
    (func (export "run") (param $n i32) (result i32) (local $i i32) (local $acc i32)
      (loop $next
        (if (i32.and (local.get $i) (i32.const 1))
          (then (local.set $acc (i32.add (local.get $acc) (call $fib (local.get $i)))))
          (else (local.set $acc (i32.sub (local.get $acc) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
      (local.get $acc)))`;
  const CALLS: Array<[string, unknown[]]> = [["run", [8]]];

  it("the differential test fails for every charge dropped or doubled", async () => {
    const original = await watModule(SOURCE);
    expect(disagreements(original, CALLS)).toEqual([]);
    const { bytes, exports } = instrument(original);
    const charges = countCharges(bytes);
    expect(charges).toBeGreaterThan(5);
    for (let which = 0; which < charges; which++) {
      for (const mutation of ["drop", "double"] as const) {
        const mutant = mutateCharge(bytes, which, mutation);
        const found = disagreements(original, CALLS, undefined, (_, imports) => meteredBytes(mutant, exports, imports));
        expect(found, `charge ${which} ${mutation}ped`).not.toEqual([]);
      }
    }
  });
});
