/**
 * Runs a core module, metered or not, and reports what happened in a form
 * two runs can be compared by: the result or the trap, plus the fuel used.
 */
import { parse } from "@bytecodealliance/jco";
import { instrument } from "../../host/src/fuel/instrument.ts";

export async function watModule(text: string): Promise<Uint8Array> {
  return parse(text);
}

export type Outcome = { ok: true; value: string } | { ok: false; error: string };

export function describe(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(",")}]`;
  return String(value);
}

export function call(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: describe(fn()) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error) };
  }
}

export interface Metered {
  instance: WebAssembly.Instance;
  fuel: WebAssembly.Global<"i64">;
  /** Runs `name(...args)` with `budget` fuel; `exhausted` as the host decides it. */
  run(name: string, args: unknown[], budget: bigint): { outcome: Outcome; used: bigint; exhausted: boolean };
}

export function metered(original: Uint8Array, imports: WebAssembly.Imports = {}): Metered {
  const { bytes, exports } = instrument(original, { initialFuel: 1_000_000n });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), imports);
  const fuel = instance.exports[exports.fuel] as WebAssembly.Global<"i64">;
  return {
    instance,
    fuel,
    run(name, args, budget) {
      fuel.value = budget;
      const outcome = call(() => (instance.exports[name] as (...a: unknown[]) => unknown)(...args));
      return { outcome, used: budget - fuel.value, exhausted: fuel.value < 0n };
    },
  };
}

export function plain(bytes: Uint8Array, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), imports);
}
