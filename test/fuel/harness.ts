/**
 * Runs a core module metered (as the host does), under the reference
 * counter, or plain, and reports what happened in a form runs can be
 * compared by: the result or the trap, plus the fuel used or counted.
 */
import { parse } from "@bytecodealliance/jco";
import { instrument, type MeterExports, SLICE } from "../../host/src/fuel/instrument.ts";
import { FuelMeter, type FuelMeterOptions, FuelPort, instantiateMetered } from "../../host/src/runtime/fuel-meter.ts";
import { COUNT_EXPORT, countEveryInstruction } from "./reference.ts";

export async function watModule(text: string): Promise<Uint8Array> {
  return parse(text);
}

export type Outcome = { ok: true; value: string } | { ok: false; error: string };

export function describe(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(",")}]`;
  // An exported Wasm function's name is its index, which metering moves (the refill import).
  if (typeof value === "function") return "function";
  return String(value);
}

export function call(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: describe(fn()) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error) };
  }
}

export interface Run {
  outcome: Outcome;
  used: bigint;
  exhausted: boolean;
}

export interface Metered {
  instance: WebAssembly.Instance;
  port: FuelPort;
  exports: MeterExports;
  /** Runs `name(...args)` with `budget` fuel through a FuelMeter, as the host does. */
  run(name: string, args: unknown[], budget: bigint, options?: FuelMeterOptions): Run;
}

/** Fuel the port holds while a module is instantiated (for start functions). */
const START_FUEL = 1_000_000n;

/** Instantiates the instrumented module as the host does, against a fuel port of its own or `shared`. */
export function meteredBytes(
  bytes: Uint8Array,
  exports: MeterExports,
  imports: WebAssembly.Imports = {},
  shared?: FuelPort,
): Metered {
  const port = shared ?? new FuelPort();
  if (!shared) port.fuel.value = START_FUEL;
  const instance = instantiateMetered(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), imports, port);
  return {
    instance,
    port,
    exports,
    run(name, args, budget, options) {
      const meter = new FuelMeter(budget, options);
      meter.attach(port);
      const outcome = call(() => (instance.exports[name] as (...a: unknown[]) => unknown)(...args));
      const { used, exhausted } = meter.settle();
      return { outcome, used, exhausted };
    },
  };
}

export function metered(original: Uint8Array, imports: WebAssembly.Imports = {}): Metered {
  const { bytes, exports } = instrument(original);
  return meteredBytes(bytes, exports, imports);
}

export function plain(bytes: Uint8Array, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), imports);
}

/** The same module under the reference counter (test/fuel/reference.ts). */
export interface Counted {
  instance: WebAssembly.Instance;
  /** Runs `name(...args)` and returns what happened and what the reference counted. */
  run(name: string, args: unknown[]): { outcome: Outcome; counted: bigint };
}

export function counted(original: Uint8Array, imports: WebAssembly.Imports = {}): Counted {
  const instance = plain(countEveryInstruction(original), imports);
  const count = instance.exports[COUNT_EXPORT] as WebAssembly.Global<"i64">;
  return {
    instance,
    run(name, args) {
      const before = count.value;
      const outcome = call(() => (instance.exports[name] as (...a: unknown[]) => unknown)(...args));
      return { outcome, counted: count.value - before };
    },
  };
}

/**
 * What a run that traps may be charged besides what it ran: less by what
 * ran since the fuel was last stored (less than a slice: calls out of the
 * module, slices drawn and refills store it), more by the rest of the
 * straight-line run it trapped in (a few instructions here).
 */
export const TRAP_BOUND = { under: SLICE, over: 64n };

/**
 * Runs each call on a metered and a reference instance (each made fresh
 * from `imports()`) and returns a line per call that disagrees: outcome,
 * or fuel (exactly, for runs that complete; within TRAP_BOUND for traps).
 */
export function disagreements(
  original: Uint8Array,
  calls: Array<[string, unknown[]]>,
  imports: () => WebAssembly.Imports = () => ({}),
  meter: (original: Uint8Array, imports: WebAssembly.Imports) => Metered = metered,
): string[] {
  const m = meter(original, imports());
  const r = counted(original, imports());
  const found: string[] = [];
  for (const [name, args] of calls) {
    const { outcome, used } = m.run(name, args, 1n << 50n);
    const reference = r.run(name, args);
    const what = `${name}(${args.map(describe).join(",")})`;
    if (JSON.stringify(outcome) !== JSON.stringify(reference.outcome)) {
      found.push(`${what}: ${JSON.stringify(outcome)} metered, ${JSON.stringify(reference.outcome)} counted`);
    } else if (outcome.ok ? used !== reference.counted : !withinTrapBound(used, reference.counted)) {
      found.push(`${what}: charged ${used}, counted ${reference.counted}`);
    }
  }
  return found;
}

export function withinTrapBound(used: bigint, counted: bigint): boolean {
  return used <= counted + TRAP_BOUND.over && used >= counted - TRAP_BOUND.under;
}
