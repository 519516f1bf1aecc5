/**
 * One live instance of a function's component: the jco glue instantiated
 * against the host's capability imports, from modules compiled once in the
 * main thread. An instance serves one request at a time and is reused for
 * later requests of the same function version only; one that trapped is
 * thrown away.
 */
import { monotonicNow } from "../capabilities/clocks.ts";
import { buildImports } from "../capabilities/index.ts";
import { LogSink } from "../capabilities/log-sink.ts";
import type { FunctionImage, GuestRequest, GuestResponse } from "./types.ts";

const HANDLER_EXPORT = "joule:function/handler@0.1.0";

interface Glue {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: Record<string, unknown>,
    instantiateCore: (module: WebAssembly.Module, imports?: WebAssembly.Imports) => WebAssembly.Instance,
  ): Record<string, unknown>;
}

interface Handler {
  handle(
    req: GuestRequest,
    inv: { requestId: string; functionName: string },
  ): { status: number; headers: Array<[string, string]>; body: Uint8Array };
}

/** A failure the guest reported itself (`err` of the WIT result): not a trap. */
export class GuestFailure extends Error {
  override name = "GuestFailure";
}

const MONOTONIC_CLOCK = "wasi:clocks/monotonic-clock@";

/**
 * StarlingMonkey reads the monotonic clock some 40 times per request. jco's
 * lowering wraps each read in task bookkeeping that costs more than the
 * read; the import takes nothing and returns a u64, so the core module can
 * call the host's clock directly.
 */
function withDirectClock(imports: WebAssembly.Imports | undefined): WebAssembly.Imports | undefined {
  for (const [namespace, members] of Object.entries(imports ?? {})) {
    if (namespace.startsWith(MONOTONIC_CLOCK) && typeof members.now === "function") {
      return { ...imports, [namespace]: { ...members, now: monotonicNow } };
    }
  }
  return imports;
}

const glueCache = new Map<string, Promise<Glue>>();

function loadGlue(url: string): Promise<Glue> {
  let glue = glueCache.get(url);
  if (!glue) {
    glue = import(url) as Promise<Glue>;
    glueCache.set(url, glue);
  }
  return glue;
}

export class FunctionInstance {
  readonly version: string;
  readonly #handler: Handler;
  readonly #memories: WebAssembly.Memory[];
  readonly #name: string;
  readonly sink: LogSink;

  private constructor(image: FunctionImage, handler: Handler, memories: WebAssembly.Memory[], sink: LogSink) {
    this.version = image.version;
    this.#name = image.name;
    this.#handler = handler;
    this.#memories = memories;
    this.sink = sink;
  }

  static async create(image: FunctionImage, maxLogBytes: number): Promise<FunctionInstance> {
    const glue = await loadGlue(image.glueUrl);
    const sink = new LogSink(maxLogBytes);
    const memories: WebAssembly.Memory[] = [];
    const root = glue.instantiate(
      (name) => {
        const module = image.modules[name];
        if (!module) throw new Error(`component asks for core module ${name}, which was not deployed`);
        return module;
      },
      buildImports({ env: image.env, sink }),
      (module, imports) => {
        const instance = new WebAssembly.Instance(module, withDirectClock(imports));
        for (const value of Object.values(instance.exports)) {
          if (value instanceof WebAssembly.Memory) memories.push(value);
        }
        return instance;
      },
    );
    const handler = root[HANDLER_EXPORT] as Handler | undefined;
    if (!handler || typeof handler.handle !== "function") {
      throw new Error(`component does not export ${HANDLER_EXPORT}`);
    }
    return new FunctionInstance(image, handler, memories, sink);
  }

  /** Linear memory held by this instance, in bytes. */
  memoryBytes(): number {
    let total = 0;
    for (const memory of this.#memories) total += memory.buffer.byteLength;
    return total;
  }

  handle(request: GuestRequest, requestId: string): GuestResponse {
    try {
      return this.#handler.handle(request, { requestId, functionName: this.#name });
    } catch (error) {
      // jco wraps the `err` case of a result in a ComponentError carrying `payload`.
      const payload = (error as { payload?: unknown } | null)?.payload;
      if (typeof payload === "string") throw new GuestFailure(payload);
      throw error;
    }
  }
}
