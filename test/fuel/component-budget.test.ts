/**
 * One budget for the whole component: a function whose component has two
 * core modules that both burn fuel (a hand-written glue instantiates them,
 * as jco's does, and the second calls into the first) is stopped at its
 * limit, whichever module is running, not at what each module could use
 * alone; and a limit of exactly what a call uses still lets it succeed.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_FILES } from "../../host/src/capabilities/files.ts";
import { JouleError } from "../../host/src/errors.ts";
import { instrument, type MeterExports } from "../../host/src/fuel/instrument.ts";
import { FunctionInstance } from "../../host/src/runtime/instance.ts";
import type { FunctionImage, GuestRequest } from "../../host/src/runtime/types.ts";
import { watModule } from "./harness.ts";

/** Each module spins `n` times; b also calls a's spin, so the two spend about the same. */
const A = `(module (func (export "spin") (param $n i32) (local $i i32)
  (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))))`;
const B = `(module (import "a" "spin" (func $spin (param i32)))
  (global $turns (export "turns") (mut i32) (i32.const 0))
  (func (export "run") (param $n i32) (local $i i32)
    (loop $l
      (global.set $turns (i32.add (global.get $turns) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $spin (local.get $n))))`;

/** The shape of jco's instantiation-mode glue, for a component of the two modules. */
const GLUE = `export function instantiate(getCoreModule, imports, instantiateCore) {
  const a = instantiateCore(getCoreModule("a.wasm"), {});
  const b = instantiateCore(getCoreModule("b.wasm"), { a: { spin: a.exports.spin } });
  return {
    "joule:function/handler@0.1.0": {
      handle(request) {
        b.exports.run(Number(new URL(request.url).searchParams.get("n")));
        return { status: 200, headers: [], body: new Uint8Array() };
      },
    },
  };
}`;

let dir: string;
let image: FunctionImage;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "joule-component-budget-"));
  const glue = join(dir, "component.mjs");
  await writeFile(glue, GLUE);
  const modules: Record<string, WebAssembly.Module> = {};
  const meters: Record<string, MeterExports> = {};
  for (const [name, text] of [
    ["a.wasm", A],
    ["b.wasm", B],
  ] as const) {
    const { bytes, exports } = instrument(await watModule(text), { splitData: true, deferStart: true });
    modules[name] = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    meters[name] = exports;
  }
  image = {
    name: "two-modules",
    version: "1",
    glueUrl: pathToFileURL(glue).href,
    initOnCreate: false,
    modules,
    images: {},
    meters,
    env: {},
    kv: { stores: [] },
    outboundHttp: { origins: [] },
    files: NO_FILES,
  };
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const request = (n: number): GuestRequest => ({
  method: "GET",
  url: `http://test/?n=${n}`,
  mount: "",
  headers: [],
  body: new Uint8Array(),
  bodyStreamed: false,
});

/** An instance (its instantiation billed apart) and the fuel and outcome of one call. */
async function call(n: number, limit: number) {
  const instance = await FunctionInstance.create(image, 65536, 16, 1e12);
  await instance.handle(request(1), "warm", 1e12); // instantiation's fuel is charged to this one
  let error: unknown;
  try {
    await instance.handle(request(n), "r", limit);
  } catch (failure) {
    error = failure;
  }
  return { used: instance.lastFuel, exhausted: instance.exhausted, error };
}

describe("a component's fuel limit", () => {
  it("holds across its core modules", async () => {
    const n = 200_000;
    const full = await call(n, 1e12);
    expect(full.error).toBeUndefined();
    const used = full.used;

    // Exactly enough succeeds, one unit less fails.
    expect(await call(n, used)).toMatchObject({ used, exhausted: false, error: undefined });
    expect((await call(n, used - 1)).error).toMatchObject({ code: "JOULE_ERR_LIMIT_FUEL" });

    // Each module alone uses about half: with 70% of what the call needs, neither would run out on
    // a budget of its own. The call is stopped at its limit, within one loop iteration.
    const limit = Math.floor(used * 0.7);
    const stopped = await call(n, limit);
    expect(stopped.error).toBeInstanceOf(JouleError);
    expect(stopped.error).toMatchObject({ code: "JOULE_ERR_LIMIT_FUEL" });
    expect(stopped.exhausted).toBe(true);
    expect(stopped.used - limit).toBeGreaterThanOrEqual(0);
    expect(stopped.used - limit).toBeLessThan(20);
  });
});
