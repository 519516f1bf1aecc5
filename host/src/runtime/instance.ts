/**
 * One live instance of a function's component: the jco glue instantiated
 * against the host's capability imports, from modules compiled once in the
 * main thread. An instance serves one request at a time and is reused for
 * later requests of the same function version only; one that trapped is
 * thrown away.
 */

import { monotonicNow } from "../capabilities/clocks.ts";
import { buildImports } from "../capabilities/index.ts";
import type { Denial } from "../capabilities/kv.ts";
import { LogSink } from "../capabilities/log-sink.ts";
import { SecretStore } from "../capabilities/secrets.ts";
import { JouleError } from "../errors.ts";
import type { MemoryImage, MeterExports } from "../fuel/instrument.ts";
import { readChunkedSync } from "../store/chunk-store.ts";
import { applyImage, decodeImage } from "./memory-image.ts";
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

/**
 * What a run took from fuel globals that were set to `budget`, over all the
 * function's core instances, and whether it overdrew: a global below zero,
 * one above what it was given (tampering), or a total past the function's
 * limit (each core instance could otherwise use the whole budget).
 */
function account(
  fuel: WebAssembly.Global<"i64">[],
  budget: bigint,
  limit: number,
): { used: number; exhausted: boolean } {
  let used = 0n;
  let exhausted = false;
  for (const global of fuel) {
    const left = global.value;
    if (left < 0n || left > budget) exhausted = true;
    if (left < budget) used += budget - left;
  }
  if (used > BigInt(limit)) exhausted = true;
  return { used: Number(used), exhausted };
}

/** Making an instance failed; `used` is the fuel it took, billed like any invocation's. */
export class InstantiationFailure extends Error {
  override name = "InstantiationFailure";
  readonly used: number;
  readonly exhausted: boolean;
  readonly memoryRefused: boolean;

  constructor(cause: unknown, used: number, exhausted: boolean, memoryRefused: boolean) {
    super(cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause), { cause });
    this.used = used;
    this.exhausted = exhausted;
    this.memoryRefused = memoryRefused;
  }
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

/** Secret stores this worker has opened, by file. */
const secretStores = new Map<string, SecretStore>();

/** The function's env with secret references replaced by their current values. */
function resolveEnv(image: FunctionImage): Record<string, string> {
  if (!image.secrets) return image.env;
  let store = secretStores.get(image.secrets);
  if (!store) {
    store = new SecretStore(image.secrets);
    secretStores.set(image.secrets, store);
  }
  try {
    return store.resolve(image.env, image.name);
  } catch (error) {
    throw new JouleError("JOULE_ERR_SECRET_MISSING", (error as Error).message);
  }
}

/** Memory images read by this worker, most recently used last. */
const imageCache = new Map<string, MemoryImage>();
const MAX_CACHED_IMAGES = 32;

function loadImage(path: string): MemoryImage {
  let image = imageCache.get(path);
  if (image) imageCache.delete(path);
  else image = decodeImage(readChunkedSync(path));
  imageCache.set(path, image);
  if (imageCache.size > MAX_CACHED_IMAGES) imageCache.delete(imageCache.keys().next().value as string);
  return image;
}

function loadGlue(url: string): Promise<Glue> {
  let glue = glueCache.get(url);
  if (!glue) {
    glue = import(url) as Promise<Glue>;
    glueCache.set(url, glue);
  }
  return glue;
}

/** What the core instances of the component hold that the host drives: memories and meters. */
interface CoreParts {
  memories: WebAssembly.Memory[];
  fuel: WebAssembly.Global<"i64">[];
  memoryRefused: WebAssembly.Global<"i32">[];
}

function meter<T extends "i32" | "i64">(instance: WebAssembly.Instance, name: string): WebAssembly.Global<T> {
  const global = instance.exports[name];
  // Every module is metered at deploy; one without its meters must not run.
  if (!(global instanceof WebAssembly.Global)) throw new Error(`core module without its ${name} global`);
  return global as WebAssembly.Global<T>;
}

export class FunctionInstance {
  readonly version: string;
  readonly #handler: Handler;
  readonly #parts: CoreParts;
  readonly #name: string;
  readonly sink: LogSink;
  /** Fuel spent instantiating, charged to the first invocation. */
  #pendingFuel: number;
  /** Fuel the last call used (what the host charges), and whether it ran out. */
  lastFuel = 0;
  exhausted = false;
  /** Memory when the instance was made; one that grew well past it is not kept. */
  readonly initialMemoryBytes: number;

  /** Capability calls this instance was denied since the last drain. */
  readonly #denials: Denial[];

  readonly #memoryLimitBytes: number;

  private constructor(
    image: FunctionImage,
    handler: Handler,
    parts: CoreParts,
    sink: LogSink,
    denials: Denial[],
    instantiationFuel: number,
    memoryLimitPages: number,
  ) {
    this.#memoryLimitBytes = memoryLimitPages * 65536;
    this.#denials = denials;
    this.version = image.version;
    this.#name = image.name;
    this.#handler = handler;
    this.#parts = parts;
    this.sink = sink;
    this.#pendingFuel = instantiationFuel;
    this.initialMemoryBytes = this.memoryBytes();
  }

  /**
   * Makes an instance within the first invocation's limits: each core
   * instance's fuel and memory limit are set as soon as it exists, before its
   * memory image is written and its (deferred) start function runs, so
   * instantiation is metered and bounded like the request itself, and billed
   * even when it fails (InstantiationFailure carries what it used).
   */
  static async create(
    image: FunctionImage,
    maxLogBytes: number,
    memoryLimitPages: number,
    fuelLimit: number,
  ): Promise<FunctionInstance> {
    const budget = BigInt(fuelLimit);
    const glue = await loadGlue(image.glueUrl);
    const sink = new LogSink(maxLogBytes);
    const denials: Denial[] = [];
    const parts: CoreParts = { memories: [], fuel: [], memoryRefused: [] };
    const meters = new Map<WebAssembly.Module, MeterExports>();
    const images = new Map<WebAssembly.Module, string>();
    for (const [file, module] of Object.entries(image.modules)) {
      const names = image.meters[file];
      if (names) meters.set(module, names);
      const imagePath = image.images[file];
      if (imagePath) images.set(module, imagePath);
    }
    const env = resolveEnv(image); // a missing secret is its own error, not an instantiation trap
    let root: Record<string, unknown>;
    try {
      root = glue.instantiate(
        (name) => {
          const module = image.modules[name];
          if (!module) throw new Error(`component asks for core module ${name}, which was not deployed`);
          return module;
        },
        buildImports({ env, sink, kv: image.kv, denials }),
        (module, imports) => {
          const instance = new WebAssembly.Instance(module, withDirectClock(imports));
          for (const value of Object.values(instance.exports)) {
            if (value instanceof WebAssembly.Memory) parts.memories.push(value);
          }
          const names = meters.get(module);
          if (!names) throw new Error("core module that was not metered at deploy");
          const fuel = meter<"i64">(instance, names.fuel);
          fuel.value = budget;
          parts.fuel.push(fuel);
          meter<"i64">(instance, names.memoryLimit).value = BigInt(memoryLimitPages);
          parts.memoryRefused.push(meter<"i32">(instance, names.memoryRefused));
          const imagePath = images.get(module);
          if (imagePath) {
            const memory = instance.exports[names.memory ?? ""];
            if (!(memory instanceof WebAssembly.Memory))
              throw new Error("module with a memory image exports no memory");
            applyImage(memory, loadImage(imagePath));
          }
          if (names.start) (instance.exports[names.start] as () => void)();
          return instance;
        },
      );
    } catch (error) {
      const { used, exhausted } = account(parts.fuel, budget, fuelLimit);
      const refused = parts.memoryRefused.some((global) => global.value !== 0);
      throw new InstantiationFailure(error, used, exhausted, refused);
    }
    const spent = account(parts.fuel, budget, fuelLimit);
    if (spent.exhausted)
      throw new InstantiationFailure(new Error("instantiation used up the fuel"), spent.used, true, false);
    const handler = root[HANDLER_EXPORT] as Handler | undefined;
    if (!handler || typeof handler.handle !== "function") {
      throw new Error(`component does not export ${HANDLER_EXPORT}`);
    }
    return new FunctionInstance(image, handler, parts, sink, denials, spent.used, memoryLimitPages);
  }

  /** The denials since the last call, and a fresh start. */
  drainDenials(): Denial[] {
    return this.#denials.splice(0);
  }

  /** Linear memory held by this instance, in bytes. */
  memoryBytes(): number {
    let total = 0;
    for (const memory of this.#parts.memories) total += memory.buffer.byteLength;
    return total;
  }

  /**
   * Runs one request with `fuelLimit` fuel. Afterwards `lastFuel` holds what
   * it used (plus instantiation, on the first call) and `exhausted` whether
   * it ran out; a run that ran out fails with JOULE_ERR_LIMIT_FUEL even when
   * its last segments overdrew the budget without reaching a check.
   */
  handle(request: GuestRequest, requestId: string, fuelLimit: number): GuestResponse {
    const budget = BigInt(fuelLimit);
    for (const global of this.#parts.fuel) global.value = budget;
    for (const global of this.#parts.memoryRefused) global.value = 0;
    let response: GuestResponse | undefined;
    let failure: unknown;
    try {
      response = this.#handler.handle(request, { requestId, functionName: this.#name });
    } catch (error) {
      failure = error;
    }
    const spent = account(this.#parts.fuel, budget, fuelLimit);
    this.exhausted = spent.exhausted;
    this.lastFuel = spent.used + this.#pendingFuel;
    this.#pendingFuel = 0;
    if (this.exhausted) {
      throw new JouleError("JOULE_ERR_LIMIT_FUEL", `the function used up its fuel limit of ${fuelLimit}`, {
        limit: fuelLimit,
      });
    }
    // Each module's memory is bounded on its own; the limit is the function's, so check the sum too.
    const overMemory = this.memoryBytes() > this.#memoryLimitBytes;
    if (overMemory || (failure !== undefined && this.#parts.memoryRefused.some((global) => global.value !== 0))) {
      throw new JouleError(
        "JOULE_ERR_LIMIT_MEMORY",
        `the function failed after its memory reached its limit (limits.memoryMb) at ${Math.round(this.memoryBytes() / 2 ** 20)} MiB`,
      );
    }
    if (failure !== undefined) {
      // jco wraps the `err` case of a result in a ComponentError carrying `payload`.
      const payload = (failure as { payload?: unknown } | null)?.payload;
      if (typeof payload === "string") throw new GuestFailure(payload);
      throw failure;
    }
    return response as GuestResponse;
  }
}
