/**
 * Differential test on random valid modules: binaryen's translate-to-fuzz
 * turns fixed seeds into modules using the features Joule meters; each
 * exported function must behave identically (results, traps, and the calls
 * it makes to its imports) before and after metering, and be charged what
 * the reference counter (reference.ts) counts: exactly for a run that
 * completes, within the documented bound for one that traps.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, counted, metered, type Outcome, plain, describe as show, withinTrapBound } from "./harness.ts";

const run = promisify(execFile);
const WASM_OPT = new URL("../../node_modules/binaryen/bin/wasm-opt", import.meta.url).pathname;
const FEATURES = [
  "--enable-bulk-memory",
  "--enable-sign-ext",
  "--enable-nontrapping-float-to-int",
  "--enable-simd",
  "--enable-multivalue",
  "--enable-reference-types",
  "--enable-tail-call",
  "--enable-mutable-globals",
];
const SEEDS = Array.from({ length: 24 }, (_, i) => i + 1);

let dir: string;
const modules = new Map<number, Uint8Array>();

/** Deterministic bytes for a seed (xorshift), the fuzzer's raw input. */
function seedBytes(seed: number, length = 8192): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "joule-fuzz-"));
  for (let i = 0; i < SEEDS.length; i += 4) {
    await Promise.all(
      SEEDS.slice(i, i + 4).map(async (seed) => {
        const input = join(dir, `${seed}.bin`);
        const output = join(dir, `${seed}.wasm`);
        await writeFile(input, seedBytes(seed));
        await run(process.execPath, [WASM_OPT, input, "-ttf", ...FEATURES, "-o", output]);
        modules.set(seed, await readFile(output));
      }),
    );
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function fuzzImports(module: WebAssembly.Module, log: string[]): WebAssembly.Imports {
  const imports: Record<string, Record<string, unknown>> = {};
  for (const { module: ns, name, kind } of WebAssembly.Module.imports(module)) {
    imports[ns] ??= {};
    const target = imports[ns] as Record<string, unknown>;
    if (kind === "function")
      target[name] = (...args: unknown[]) => void log.push(`${name}(${args.map(show).join(",")})`);
    else if (kind === "global") target[name] = null;
    else throw new Error(`fuzz module imports a ${kind}`);
  }
  // An immutable global import may be given as a plain value (null externref).
  return imports as WebAssembly.Imports;
}

type Trace = Array<{ name: string; outcome: Outcome; log: string[] }>;

/** What running one export did, and the fuel it used or was counted (`cost`), for one kind of instance. */
type Runner = (name: string) => { outcome: Outcome; cost?: bigint };

function exercise(run: Runner | undefined, names: string[], log: string[], costs: bigint[] = []): Trace {
  const trace: Trace = [];
  for (const name of names) {
    log.length = 0;
    const { outcome, cost } = run ? run(name) : { outcome: { ok: false as const, error: "not instantiated" } };
    if (cost !== undefined) costs.push(cost);
    trace.push({ name, outcome, log: [...log] });
  }
  return trace;
}

describe("metering random modules (binaryen translate-to-fuzz)", () => {
  it.each(SEEDS)("seed %i behaves the same metered and unmetered, and is charged what it ran", (seed) => {
    const bytes = modules.get(seed) as Uint8Array;
    const compiled = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    const names = WebAssembly.Module.exports(compiled)
      .filter((e) => e.kind === "function")
      .map((e) => e.name);

    const log: string[] = [];
    let original: Runner | undefined;
    const made = call(() => {
      const instance = plain(bytes, fuzzImports(compiled, log));
      original = (name) => ({ outcome: call(instance.exports[name] as () => unknown) });
    });
    const expected = exercise(original, names, log);

    const meteredLog: string[] = [];
    let meter: Runner | undefined;
    const meteredMade = call(() => {
      const m = metered(bytes, fuzzImports(compiled, meteredLog));
      meter = (name) => {
        const { outcome, used } = m.run(name, [], 1n << 50n);
        return { outcome, cost: used };
      };
    });
    expect(meteredMade).toEqual(made);
    const used: bigint[] = [];
    expect(exercise(meter, names, meteredLog, used)).toEqual(expected);

    const countedLog: string[] = [];
    let reference: Runner | undefined;
    expect(
      call(() => {
        const r = counted(bytes, fuzzImports(compiled, countedLog));
        reference = (name) => {
          const { outcome, counted: cost } = r.run(name, []);
          return { outcome, cost };
        };
      }),
    ).toEqual(made);
    const counts: bigint[] = [];
    expect(exercise(reference, names, countedLog, counts)).toEqual(expected);
    // Exact where a run completed, within the documented bound where it trapped.
    expected.forEach(({ name, outcome }, i) => {
      const [charged, ran] = [used[i] as bigint, counts[i] as bigint];
      if (outcome.ok) expect(charged, name).toBe(ran);
      else expect(withinTrapBound(charged, ran), `${name}: charged ${charged}, counted ${ran}`).toBe(true);
    });
    expect(names.length).toBeGreaterThan(0);
  });
});
