/**
 * The workloads of `npm run bench:fuel`, each runnable unmetered and
 * metered the way the host meters (a refill port per core instance, one
 * FuelMeter per call): core-Wasm modules from bench/wat, and requests to
 * the JS guest in bench/guests/cpu (StarlingMonkey), whose `?work=` picks
 * the workload.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parse, transpile } from "@bytecodealliance/jco";
import { buildFunction } from "../host/src/build/build-function.ts";
import { buildImports } from "../host/src/capabilities/index.ts";
import { LogSink } from "../host/src/capabilities/log-sink.ts";
import { instrument } from "../host/src/fuel/instrument.ts";
import { FuelMeter, FuelPort, instantiateMetered } from "../host/src/runtime/fuel-meter.ts";
import { optimizeGlue } from "../host/src/runtime/transpile-worker.ts";

const ROOT = new URL("..", import.meta.url).pathname;
export const PLENTY = 1n << 60n;

/** One workload: a run returns its result as text; a metered run also the fuel it used. */
export interface Workload {
  name: string;
  plain(): string;
  metered(): { result: string; fuel: bigint; refills: number };
}

function compile(bytes: Uint8Array): WebAssembly.Module {
  return new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
}

/** Runs `call` with a fresh meter on `port`, as FunctionInstance does per invocation. */
function meteredCall<T>(port: FuelPort, slice: bigint | undefined, call: () => T) {
  const meter = new FuelMeter(PLENTY, slice === undefined ? {} : { slice });
  meter.attach(port);
  const result = call();
  const { used } = meter.settle();
  return { result, fuel: used, refills: meter.refills };
}

/** `slice`: what the module's loop headers take at a time, and the meter's refills grant (default SLICE). */
export async function coreWorkload(name: string, file: string, arg: number, slice?: bigint): Promise<Workload> {
  const original = await parse(await readFile(join(ROOT, "bench/wat", file), "utf8"));
  const plainModule = compile(original);
  const meteredModule = compile(instrument(original, slice === undefined ? {} : { slice }).bytes);
  return {
    name,
    plain: () => String((new WebAssembly.Instance(plainModule).exports.run as (n: number) => number)(arg)),
    metered() {
      const port = new FuelPort();
      const instance = instantiateMetered(meteredModule, {}, port);
      const run = meteredCall(port, slice, () => (instance.exports.run as (n: number) => number)(arg));
      return { ...run, result: String(run.result) };
    },
  };
}

interface Glue {
  instantiate(
    get: (name: string) => WebAssembly.Module,
    imports: unknown,
    core: (m: WebAssembly.Module, i?: WebAssembly.Imports) => WebAssembly.Instance,
  ): Record<string, { handle(req: unknown, inv: unknown): { body: Uint8Array } }>;
}

export interface JsGuest {
  workload(name: string, query: string): Workload;
  /** The engine's main core module, for the instrumenter's speed. */
  mainModule: Uint8Array;
}

/**
 * Builds and transpiles bench/guests/cpu, and makes one unmetered and one
 * metered instance of it (`slice` as for coreWorkload).
 */
export async function jsGuest(work: string, slice?: bigint): Promise<JsGuest> {
  const built = await buildFunction(join(ROOT, "bench/guests/cpu"));
  const { files } = (await transpile(await readFile(built.componentPath), {
    name: "component",
    instantiation: { tag: "sync" },
    noTypescript: true,
    map: {},
  } as never)) as unknown as { files: Record<string, Uint8Array> };
  const gluePath = join(work, `component-${slice ?? "default"}.mjs`);
  await writeFile(gluePath, optimizeGlue(new TextDecoder().decode(files["component.js"])));
  const glue = (await import(pathToFileURL(gluePath).href)) as Glue;
  const plainModules: Record<string, WebAssembly.Module> = {};
  const meteredModules: Record<string, WebAssembly.Module> = {};
  let mainModule: Uint8Array = new Uint8Array();
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith(".wasm")) continue;
    if (bytes.length > mainModule.length) mainModule = bytes;
    plainModules[name] = compile(bytes);
    meteredModules[name] = compile(instrument(bytes, slice === undefined ? {} : { slice }).bytes);
  }
  const port = new FuelPort();
  // Start functions run while instantiating, before any invocation's meter is attached.
  port.fuel.value = PLENTY;
  const instantiate = (modules: Record<string, WebAssembly.Module>, meter: boolean) => {
    const root = glue.instantiate(
      (name) => modules[name] as WebAssembly.Module,
      buildImports({ env: {}, sink: new LogSink(65536), kv: { stores: [] }, denials: [] }),
      (module, imports) =>
        meter ? instantiateMetered(module, imports, port) : new WebAssembly.Instance(module, imports),
    );
    const handler = root["joule:function/handler@0.1.0"];
    if (!handler) throw new Error("no handler export");
    return handler;
  };
  const plain = instantiate(plainModules, false);
  const metered = instantiate(meteredModules, true);
  const decode = (r: { body: Uint8Array }) => new TextDecoder().decode(r.body);
  const invocation = { requestId: "bench", functionName: "bench-cpu" };
  return {
    mainModule,
    workload(name, query) {
      const request = { method: "GET", url: `http://bench/?${query}`, headers: [], body: new Uint8Array() };
      return {
        name,
        plain: () => decode(plain.handle(request, invocation)),
        metered() {
          const run = meteredCall(port, slice, () => metered.handle(request, invocation));
          return { ...run, result: decode(run.result) };
        },
      };
    },
  };
}
