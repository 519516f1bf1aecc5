/**
 * The JS engine under metering: each example guest, and bench/guests/cpu
 * running issue 15's workloads and call-heavy code, is transpiled once and
 * instantiated three ways, from the original core modules, from the metered
 * ones (as the host meters: one fuel port for the component, a FuelMeter per
 * request) and from the reference counter's (reference.ts). Every request
 * must get the same response from all three, and be charged exactly what
 * the reference counted, summed over the component's core modules.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { transpile } from "@bytecodealliance/jco";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImports } from "../../host/src/capabilities/index.ts";
import { LogSink } from "../../host/src/capabilities/log-sink.ts";
import { instrument } from "../../host/src/fuel/instrument.ts";
import { FuelMeter, FuelPort, instantiateMetered } from "../../host/src/runtime/fuel-meter.ts";
import { componentPath } from "../support/host.ts";
import { COUNT_EXPORT, countEveryInstruction } from "./reference.ts";

interface Response {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}
interface Handler {
  handle(req: unknown, inv: unknown): Response;
}
interface Glue {
  instantiate(
    get: (name: string) => WebAssembly.Module,
    imports: unknown,
    core: (m: WebAssembly.Module, i?: WebAssembly.Imports) => WebAssembly.Instance,
  ): Record<string, Handler>;
}

/** Fuel the port holds while the component is instantiated (start functions, initializers). */
const START_FUEL = 1n << 50n;
const BUDGET = 1n << 50n;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "joule-js-diff-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

type Kind = "plain" | "metered" | "reference";

/** The component's handler made from its core modules as `kind`, and what a call costs that way. */
interface Made {
  handler: Handler;
  /** Runs `call` and returns what it used (metered) or counted (reference). */
  cost(call: () => Response): { response: Response; cost: bigint };
}

/**
 * `imports` with clocks that advance one millisecond per reading from the
 * same start: the engine's GC budgets its incremental slices by the
 * monotonic clock, so real clocks would let the three instances run
 * different instructions.
 */
function steadyClocks(imports: ReturnType<typeof buildImports>): ReturnType<typeof buildImports> {
  let now = 1_000_000_000_000n;
  const tick = () => {
    now += 1_000_000n;
    return now;
  };
  const monotonic = imports["wasi:clocks/monotonic-clock"];
  return {
    ...imports,
    "wasi:clocks/monotonic-clock": { ...monotonic, now: tick },
    "wasi:clocks/wall-clock": {
      now: () => {
        const ns = tick();
        return { seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) };
      },
    },
  };
}

async function instances(name: string): Promise<Record<Kind, Made>> {
  const { files } = (await transpile(await readFile(componentPath(name)), {
    name: "component",
    instantiation: { tag: "sync" },
    noTypescript: true,
    map: {},
  } as never)) as unknown as { files: Record<string, Uint8Array> };
  const gluePath = join(dir, `${name}.mjs`);
  await writeFile(gluePath, files["component.js"] as Uint8Array);
  const glue = (await import(pathToFileURL(gluePath).href)) as Glue;
  const make = (kind: Kind): Made => {
    const modules: Record<string, WebAssembly.Module> = {};
    for (const [file, bytes] of Object.entries(files)) {
      if (!file.endsWith(".wasm")) continue;
      const code =
        kind === "metered" ? instrument(bytes).bytes : kind === "reference" ? countEveryInstruction(bytes) : bytes;
      modules[file] = new WebAssembly.Module(code as Uint8Array<ArrayBuffer>);
    }
    const port = new FuelPort();
    port.fuel.value = START_FUEL;
    const counters: Array<WebAssembly.Global<"i64">> = [];
    const root = glue.instantiate(
      (file) => modules[file] as WebAssembly.Module,
      steadyClocks(
        buildImports({
          env: { GREETING: "Hi", API_VERSION: "2" },
          sink: new LogSink(65536),
          kv: { stores: [] },
          denials: [],
        }),
      ),
      (m, i) => {
        if (kind === "metered") return instantiateMetered(m, i, port);
        const instance = new WebAssembly.Instance(m, i);
        if (kind === "reference") counters.push(instance.exports[COUNT_EXPORT] as WebAssembly.Global<"i64">);
        return instance;
      },
    );
    const handler = root["joule:function/handler@0.2.0"] as Handler;
    const counted = () => counters.reduce((sum, g) => sum + g.value, 0n);
    return {
      handler,
      cost(call) {
        if (kind === "metered") {
          const meter = new FuelMeter(BUDGET);
          meter.attach(port);
          const response = call();
          const { used, exhausted } = meter.settle();
          expect(exhausted).toBe(false);
          return { response, cost: used };
        }
        const before = counted();
        const response = call();
        return { response, cost: counted() - before };
      },
    };
  };
  return { plain: make("plain"), metered: make("metered"), reference: make("reference") };
}

const text = new TextEncoder();
const req = (method: string, path: string, body = "") => ({
  method,
  url: `http://test/fn/guest${path}`,
  mount: "/fn/guest",
  headers: [["content-type", "application/json"]],
  body: text.encode(body),
  bodyStreamed: false,
});
const view = (r: Response) => ({ status: r.status, headers: r.headers, body: Buffer.from(r.body).toString("base64") });

const REQUESTS: Record<string, Array<ReturnType<typeof req>>> = {
  hello: [req("GET", "/"), req("GET", "/a/b?name=Z")],
  "json-api": [
    req("GET", "/"),
    req("POST", "/sum", '{"numbers":[1,2,3]}'),
    req("POST", "/sum", "nope"),
    req("GET", "/greet/J%C3%BCrgen"),
    req("DELETE", "/sum"),
    req("POST", "/words", "one two  three"),
  ],
  echo: [req("POST", "/", "x".repeat(10_000)), req("PUT", "/?digest", "\u0000\u00ff binary")],
  // Issue 15's workloads and call-heavy code, small enough for the reference counter.
  "bench-cpu": [
    req("GET", "/?work=loop&n=2000"),
    req("GET", "/?work=json&n=200"),
    req("GET", "/?work=strings&n=2000"),
    req("GET", "/?work=digest&n=20"),
    req("GET", "/?work=clock&n=200"),
    req("GET", "/?work=fib&n=12"),
    req("GET", "/?work=calls&n=500"),
    req("GET", "/?n=2000"),
  ],
};

describe("metering the JS engine", () => {
  it.each(Object.keys(REQUESTS))("%s answers the same metered, and is charged what it ran", async (name) => {
    const made = await instances(name);
    for (const request of REQUESTS[name] ?? []) {
      const what = `${request.method} ${request.url}`;
      const inv = { requestId: "r", functionName: name };
      // Random numbers are the only inputs that differ between runs (the clocks are steady): these
      // workloads take no decision on them, so the three run the same instructions.
      const plain = made.plain.handler.handle(request, inv);
      const metered = made.metered.cost(() => made.metered.handler.handle(request, inv));
      const reference = made.reference.cost(() => made.reference.handler.handle(request, inv));
      expect(view(metered.response), what).toEqual(view(plain));
      expect(view(reference.response), what).toEqual(view(plain));
      expect(metered.cost, what).toBe(reference.cost);
      expect(metered.cost, what).toBeGreaterThan(0n);
    }
  });
});
