/**
 * `npm run bench:fuel`: what fuel metering costs. For three CPU-bound
 * workloads (a JS guest, and two core-Wasm ones: a hash loop and a
 * quicksort) it runs the unmetered and the metered module alternately in
 * the same process and prints the median time of each, the overhead, and
 * the geometric mean of the overheads; and the instrumenter's speed on the
 * JS engine's main core module. A benchmark: it fails only on errors.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parse, transpile } from "@bytecodealliance/jco";
import { buildFunction } from "../host/src/build/build-function.ts";
import { buildImports } from "../host/src/capabilities/index.ts";
import { LogSink } from "../host/src/capabilities/log-sink.ts";
import { instrument } from "../host/src/fuel/instrument.ts";
import { optimizeGlue } from "../host/src/runtime/transpile-worker.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const PLENTY = 1n << 60n;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function compile(bytes: Uint8Array): WebAssembly.Module {
  return new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
}

/** Sets every fuel global an instance exports to a budget it cannot exhaust. */
function refuel(exports: WebAssembly.Exports): void {
  for (const [name, value] of Object.entries(exports)) {
    if (name.startsWith("joule:fuel") && value instanceof WebAssembly.Global) value.value = PLENTY;
  }
}

/** Times `plain` and `metered` alternately, after a warm-up, and returns their medians in ms. */
function compare(plain: () => unknown, metered: () => unknown): { plain: number; metered: number; same: boolean } {
  const same = String(plain()) === String(metered());
  for (let i = 0; i < 2; i++) {
    plain();
    metered();
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    plain();
    a.push(performance.now() - t);
    t = performance.now();
    metered();
    b.push(performance.now() - t);
  }
  return { plain: median(a), metered: median(b), same };
}

async function coreWorkload(file: string, arg: number) {
  const original = await parse(await readFile(join(ROOT, "bench/wat", file), "utf8"));
  const plainModule = compile(original);
  const meteredModule = compile(instrument(original, { initialFuel: PLENTY }).bytes);
  const run = (module: WebAssembly.Module) => () => {
    const instance = new WebAssembly.Instance(module);
    refuel(instance.exports);
    return (instance.exports.run as (n: number) => number)(arg);
  };
  return compare(run(plainModule), run(meteredModule));
}

interface Glue {
  instantiate(
    get: (name: string) => WebAssembly.Module,
    imports: unknown,
    core: (m: WebAssembly.Module, i?: WebAssembly.Imports) => WebAssembly.Instance,
  ): Record<string, { handle(req: unknown, inv: unknown): { body: Uint8Array } }>;
}

async function jsWorkload(work: string) {
  const built = await buildFunction(join(ROOT, "bench/guests/cpu"));
  const { files } = (await transpile(await readFile(built.componentPath), {
    name: "component",
    instantiation: { tag: "sync" },
    noTypescript: true,
    map: {},
  } as never)) as unknown as { files: Record<string, Uint8Array> };
  const gluePath = join(work, "component.mjs");
  await writeFile(gluePath, optimizeGlue(new TextDecoder().decode(files["component.js"])));
  const glue = (await import(pathToFileURL(gluePath).href)) as Glue;

  const plainModules: Record<string, WebAssembly.Module> = {};
  const meteredModules: Record<string, WebAssembly.Module> = {};
  const speeds: number[] = [];
  let mainBytes = 0;
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith(".wasm")) continue;
    plainModules[name] = compile(bytes);
    const started = performance.now();
    const metered = instrument(bytes, { initialFuel: PLENTY });
    if (bytes.length > 1_000_000) {
      mainBytes = bytes.length;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        instrument(bytes, { initialFuel: PLENTY });
        speeds.push(bytes.length / 1e6 / ((performance.now() - t) / 1000));
      }
      speeds.push(bytes.length / 1e6 / ((performance.now() - started) / 1000));
    }
    meteredModules[name] = compile(metered.bytes);
  }

  const instantiate = (modules: Record<string, WebAssembly.Module>) => {
    const root = glue.instantiate(
      (name) => modules[name] as WebAssembly.Module,
      buildImports({ env: {}, sink: new LogSink(65536), kv: { stores: [] }, denials: [] }),
      (module, imports) => {
        const instance = new WebAssembly.Instance(module, imports);
        refuel(instance.exports);
        return instance;
      },
    );
    const handler = root["joule:function/handler@0.1.0"];
    if (!handler) throw new Error("no handler export");
    return handler;
  };
  const request = { method: "GET", url: "http://bench/?n=300000", headers: [], body: new Uint8Array() };
  const invocation = { requestId: "bench", functionName: "bench-cpu" };
  const plain = instantiate(plainModules);
  const metered = instantiate(meteredModules);
  const decode = (r: { body: Uint8Array }) => new TextDecoder().decode(r.body);
  const result = compare(
    () => decode(plain.handle(request, invocation)),
    () => decode(metered.handle(request, invocation)),
  );
  return { result, speed: median(speeds), mainBytes };
}

async function main() {
  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}; node ${process.version}; ${RUNS} runs each, medians`,
  );
  const work = await mkdtemp(join(tmpdir(), "joule-bench-fuel-"));
  try {
    const js = await jsWorkload(work);
    const rows = [
      ["js guest: sieve + JSON (StarlingMonkey)", js.result],
      ["core wasm: FNV-1a hash loop", await coreWorkload("hash.wat", 200)],
      ["core wasm: quicksort 200k i32", await coreWorkload("sort.wat", 200_000)],
    ] as const;
    let logSum = 0;
    for (const [name, r] of rows) {
      if (!r.same) throw new Error(`${name}: metered and unmetered results differ`);
      const overhead = r.metered / r.plain;
      logSum += Math.log(overhead);
      console.log(
        `${name.padEnd(42)} unmetered ${r.plain.toFixed(2).padStart(8)} ms   metered ${r.metered.toFixed(2).padStart(8)} ms   overhead ${((overhead - 1) * 100).toFixed(1).padStart(6)}%`,
      );
    }
    const geomean = Math.exp(logSum / rows.length);
    console.log(`geometric mean overhead: ${((geomean - 1) * 100).toFixed(1)}%`);
    console.log(
      `instrumenter: ${(js.mainBytes / 1e6).toFixed(1)} MB engine module at ${js.speed.toFixed(0)} MB/s (median of 4)`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
