/**
 * One live instance of a function's component: the jco glue instantiated
 * against the host's capability imports, from modules compiled once in the
 * main thread. An instance serves one request at a time and is reused for
 * later requests of the same function version only; one that trapped is
 * thrown away.
 */

import { dirname } from "node:path";
import type { GuestBody } from "../capabilities/body.ts";
import { type buildImports, prepareCapabilities } from "../capabilities/index.ts";
import type { IoScope } from "../capabilities/io.ts";
import type { Denial } from "../capabilities/kv.ts";
import { LogSink } from "../capabilities/log-sink.ts";
import { SecretStore } from "../capabilities/secrets.ts";
import { JouleError } from "../errors.ts";
import { workerStorage } from "../store/storage-report.ts";
import {
  type CoreInstance,
  instantiateComponent,
  isClass,
  lateBoundImports,
  prepare,
  rememberImage,
  takeSpare,
} from "./engine.ts";
import { FuelMeter, type FuelPort, portOf } from "./fuel-meter.ts";
import { loadImage, pagedImage } from "./image-cache.ts";
import { applyImage, applyOver, clearPages, type WrittenPages } from "./memory-image.ts";
import { initEnv } from "./snapshot.ts";
import type { FunctionImage, GuestRequest, GuestResponse } from "./types.ts";

type Imports = ReturnType<typeof buildImports>;

/** The versions of the function world the host serves, newest first (sdk/wit/world.wit). */
const WORLDS = ["0.2.0", "0.1.0"] as const;
type World = (typeof WORLDS)[number];
const exportOf = (iface: string, world: World) => `joule:function/${iface}@${world}`;

/**
 * The sample request a warm-up takes: what a typical request carries (a
 * path, a query, headers, a JSON body), so that lifting and lowering each
 * part has run once.
 */
const WARM_UP_REQUEST: GuestRequest = {
  method: "POST",
  url: "http://warm-up.joule.invalid/fn/warm-up/path?query=1",
  mount: "/fn/warm-up",
  headers: [
    ["content-type", "application/json"],
    ["accept", "*/*"],
  ],
  body: new TextEncoder().encode('{"warm":true}'),
  bodyStreamed: false,
};

/**
 * The request as a component of `world` takes it: 0.2.0 gets it whole;
 * 0.1.0 gets the URL without the mount (`http://<host>/<path>`) and the
 * body in one piece (`body`, read to its end first when it was streamed).
 */
async function requestFor(world: World, request: GuestRequest, body: GuestBody | undefined): Promise<unknown> {
  if (world !== "0.1.0") return request;
  let bytes = request.body;
  if (request.bodyStreamed && body) {
    const parts: Uint8Array[] = [bytes];
    for (;;) {
      const next = await body.read(Number.MAX_SAFE_INTEGER);
      if (next === undefined) break;
      parts.push(next);
    }
    bytes = new Uint8Array(Buffer.concat(parts));
  }
  // What follows the mount in the request line, as sent (not re-encoded): `/<path>?<query>`.
  const origin = new URL(request.url).origin;
  const rest = request.mount ? request.url.slice(origin.length + request.mount.length) : "";
  const stripped = request.mount ? `${origin}${rest.startsWith("/") ? rest : `/${rest}`}` : request.url;
  return { method: request.method, url: stripped, headers: request.headers, body: bytes };
}
/** How the capabilities word a denial the guest sees (outbound-http.ts, files.ts). */
const DENIED = "JOULE_ERR_CAPABILITY_DENIED:";

interface Handler {
  handle(
    req: unknown,
    inv: { requestId: string; functionName: string },
  ): Promise<{ status: number; headers: Array<[string, string]>; body: Uint8Array }>;
}

/** The SDK's init(env); components of the bare-function world have none. */
interface Lifecycle {
  /** A promise under JSPI: init may fetch() from the function's granted origins. */
  init(): void | Promise<void>;
}

/** `warm-up` in sdk/wit/world.wit: exported by SDK builds since it was added, by nothing else. */
interface WarmUp {
  begin(): void;
}

/**
 * Makes `memory` hold the image at `path`: over what a prepared instance's
 * memory holds already, only the pages that differ; the whole image where
 * it holds nothing, or where the image is not paged yet (it is once a spare
 * has held it).
 */
function writeImage(memory: WebAssembly.Memory, path: string, base: WrittenPages | undefined): void {
  const image = loadImage(path);
  const paged = base && pagedImage(path, false);
  if (!base) applyImage(memory, image);
  else if (paged) applyOver(memory, paged, base);
  else {
    clearPages(memory, base);
    applyImage(memory, image);
  }
}

/**
 * What a call into the guest that failed answers: the guest's own error
 * (jco wraps the `err` case of a result in a ComponentError carrying
 * `payload`), as the denial when it is an uncaught capability denial the
 * host recorded, or the failure itself (a trap).
 */
function guestError(failure: unknown, denials: readonly Denial[]): unknown {
  const payload = (failure as { payload?: unknown } | null)?.payload;
  if (typeof payload !== "string") return failure;
  const denied = payload.indexOf(DENIED);
  if (denied >= 0 && denials.length > 0)
    return new JouleError("JOULE_ERR_CAPABILITY_DENIED", payload.slice(denied + DENIED.length).trim());
  return new GuestFailure(payload);
}

/** Making an instance failed; `used` is the fuel it took, billed like any invocation's. */
export class InstantiationFailure extends Error {
  override name = "InstantiationFailure";
  readonly used: number;
  readonly exhausted: boolean;
  readonly memoryRefused: boolean;
  /** Capability requests refused while instantiating (init without a snapshot): audited like any. */
  readonly denials: Denial[];

  constructor(cause: unknown, used: number, exhausted: boolean, memoryRefused: boolean, denials: Denial[] = []) {
    super(cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause), { cause });
    this.used = used;
    this.exhausted = exhausted;
    this.memoryRefused = memoryRefused;
    this.denials = denials;
  }
}

/** A failure the guest reported itself (`err` of the WIT result): not a trap. */
export class GuestFailure extends Error {
  override name = "GuestFailure";
}

/** Secret stores this worker has opened, by file. */
const secretStores = new Map<string, SecretStore>();

/**
 * The function's env with secret references replaced by their current
 * values. A secret store that cannot be read is JOULE_ERR_HOST_STORAGE (the
 * main thread hears of it), not a missing secret.
 */
function resolveEnv(image: FunctionImage): Record<string, string> {
  if (!image.secrets) return image.env;
  let store = secretStores.get(image.secrets.db);
  if (!store) {
    store = SecretStore.reader(image.secrets, workerStorage(dirname(image.secrets.db)));
    secretStores.set(image.secrets.db, store);
  }
  try {
    return store.resolve(image.env, image.name);
  } catch (error) {
    if (error instanceof JouleError) throw error;
    throw new JouleError("JOULE_ERR_SECRET_MISSING", (error as Error).message);
  }
}

/** What the core instances of the component hold that the host drives: memories and meters. */
interface CoreParts {
  memories: WebAssembly.Memory[];
  /** The fuel imports all the core instances share (fuel-meter.ts). */
  fuel: FuelPort | undefined;
  memoryRefused: WebAssembly.Global<"i32">[];
  cores: CoreInstance[];
}

/** A meter's settlement as the host records it. */
function spentOf(meter: FuelMeter): { used: number; exhausted: boolean; halted?: { error: unknown } } {
  const { used, ...rest } = meter.settle();
  return { used: Number(used), ...rest };
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
  #lifecycle: Lifecycle | undefined;
  #warmUp: WarmUp | undefined;
  #bind: ((imports: Imports) => void) | undefined;
  #imports: Imports | undefined;
  readonly #parts: CoreParts;
  readonly #name: string;
  readonly sink: LogSink;
  /** Fuel spent instantiating, charged to the first invocation. */
  #pendingFuel: number;
  /** Fuel the last call used (what the host charges), and whether it ran out. */
  lastFuel = 0;
  exhausted = false;
  /** Whether it was bound from an instance made ahead of need (runtime/engine.ts). */
  prepared = false;
  /** Memory when the instance was made; one that grew well past it is not kept. */
  readonly initialMemoryBytes: number;

  /** Capability calls this instance was denied since the last drain. */
  readonly #denials: Denial[];

  readonly #memoryLimitBytes: number;
  /** Resets the capabilities' per-invocation budgets (outbound requests) and scopes its waits. */
  #beginInvocation: (signal?: AbortSignal, body?: GuestBody) => void = () => {};
  /** The instance's waits and pending timers (capabilities/io.ts). */
  #io: IoScope | undefined;
  /** The version of the function world it serves (how requests are given to it). */
  #world: World = "0.1.0";

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
    /** An instance for a deploy-time snapshot: it does not choose what the next spare holds. */
    forSnapshot = false,
  ): Promise<FunctionInstance> {
    // Instantiation (start functions, init without a snapshot) is metered as the first invocation.
    const fuel = new FuelMeter(BigInt(fuelLimit));
    const sink = new LogSink(maxLogBytes);
    const denials: Denial[] = [];
    const parts: CoreParts = { memories: [], fuel: undefined, memoryRefused: [], cores: [] };
    const env = resolveEnv(image); // a missing secret is its own error, not an instantiation trap
    const grants = { sink, kv: image.kv, outboundHttp: image.outboundHttp, files: image.files, denials };
    const capabilities = prepareCapabilities({ env, ...grants });
    const imports = capabilities.imports;
    let bind: (imports: Imports) => void;
    let grewPastLimit = false;
    /** Limits first, then the memory image, then the deferred start: in that order for every core instance. */
    const setUp = (core: CoreInstance) => {
      const { name, instance } = core;
      parts.cores.push(core);
      for (const value of Object.values(instance.exports)) {
        // Counted once however many names export it (the metering adds one of its own).
        if (value instanceof WebAssembly.Memory && !parts.memories.includes(value)) parts.memories.push(value);
      }
      const names = image.meters[name];
      if (!names) throw new Error("core module that was not metered at deploy");
      const port = portOf(instance);
      if (meter<"i64">(instance, names.fuel) !== port.fuel) throw new Error("core module not on its component's fuel");
      parts.fuel ??= port;
      if (!fuel.attached) fuel.attach(port);
      meter<"i64">(instance, names.memoryLimit).value = BigInt(memoryLimitPages);
      parts.memoryRefused.push(meter<"i32">(instance, names.memoryRefused));
      const imagePath = image.images[name];
      if (imagePath) {
        const memory = instance.exports[names.memory ?? ""];
        if (!(memory instanceof WebAssembly.Memory)) throw new Error("module with a memory image exports no memory");
        // A snapshot's memory is as large as it was after init.
        const pages = image.snapshot?.pages[name] ?? 0;
        const have = memory.buffer.byteLength / 65536;
        if (pages > memoryLimitPages) {
          // The limit was lowered since the snapshot was taken: refused like a guest's grow past it.
          grewPastLimit = true;
          throw new Error(`the snapshot needs ${pages} pages of memory, over the limit of ${memoryLimitPages}`);
        }
        if (pages > have) memory.grow(pages - have);
        writeImage(memory, imagePath, bases.get(name));
        // Spares then hold what requests last needed; a snapshot's pre-init image is not that.
        if (image.engine && !forSnapshot) rememberImage(image.engine, name, imagePath);
      } else {
        // Not expected (the engine digest covers which modules have images), but never left to chance.
        const base = bases.get(name);
        const memory = instance.exports[names.memory ?? ""];
        if (base && memory instanceof WebAssembly.Memory) clearPages(memory, base);
      }
      for (const [global, value] of Object.entries(image.snapshot?.globals[name] ?? {})) {
        (instance.exports[global] as WebAssembly.Global).value = value;
      }
      if (names.start) (instance.exports[names.start] as () => void)();
    };
    /** What the memories of a prepared instance hold already (engine.ts, writeBases). */
    let bases: ReadonlyMap<string, WrittenPages> = new Map();
    let root: Record<string, unknown>;
    let world: World = "0.1.0";
    let prepared = false;
    try {
      if (image.engine) {
        // Made ahead of need when the worker had the time (runtime/engine.ts), else now.
        const spare = takeSpare(image);
        prepared = spare !== undefined;
        const instance = spare ?? (await prepare(image));
        bases = instance.bases;
        bind = instance.bind;
        bind(imports);
        for (const core of instance.cores) setUp(core);
        root = instance.root;
      } else {
        const late = lateBoundImports();
        bind = late.bind;
        bind(imports);
        root = await instantiateComponent(image, late.imports, setUp);
      }
      // The newest world the component exports a handler of; 0.1.0 when none (a bad component fails below).
      world = WORLDS.find((w) => root[exportOf("handler", w)] !== undefined) ?? "0.1.0";
      const lifecycle = root[exportOf("lifecycle", world)] as Lifecycle | undefined;
      if (image.initOnCreate && lifecycle) {
        // Without a snapshot, init runs in every new instance, metered as its instantiation,
        // and sees the same env it would at deploy: no secrets.
        bind(prepareCapabilities({ env: initEnv(image.env), ...grants }).imports);
        try {
          await lifecycle.init();
        } catch (error) {
          throw guestError(error, denials);
        } finally {
          bind(imports);
        }
      }
    } catch (error) {
      const { used, exhausted } = spentOf(fuel);
      const refused = grewPastLimit || parts.memoryRefused.some((global) => global.value !== 0);
      throw new InstantiationFailure(error, used, exhausted, refused, denials);
    }
    const spent = spentOf(fuel);
    if (spent.exhausted)
      throw new InstantiationFailure(new Error("instantiation used up the fuel"), spent.used, true, false, denials);
    const handler = root[exportOf("handler", world)] as Handler | undefined;
    if (!handler || typeof handler.handle !== "function") {
      throw new Error(`component does not export ${exportOf("handler", world)}`);
    }
    const made = new FunctionInstance(image, handler, parts, sink, denials, spent.used, memoryLimitPages);
    made.#lifecycle = root[exportOf("lifecycle", world)] as Lifecycle | undefined;
    made.#warmUp = root[exportOf("warm-up", world)] as WarmUp | undefined;
    made.#world = world;
    made.#bind = bind;
    made.#imports = imports;
    made.prepared = prepared;
    made.#beginInvocation = capabilities.beginInvocation;
    made.#io = capabilities.io;
    return made;
  }

  /**
   * Whether the last invocation left nothing behind (no timer pending, not
   * cancelled): only then may the instance serve another (capabilities/io.ts).
   */
  get settled(): boolean {
    return this.#io?.settled ?? true;
  }

  /** The instance is dropped: what it held open (timers, requests upstream) is closed. */
  close(): void {
    this.#io?.closeAll();
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
  /**
   * Runs one request. `checkpoint` runs at every fuel refill (every few ms of
   * CPU, at a function entry): it may throw to stop a guest that computes past
   * its deadline, or return a promise to let the worker run other
   * invocations (handle runs on a promising stack, so the guest suspends).
   */
  async handle(
    request: GuestRequest,
    requestId: string,
    fuelLimit: number,
    options: { signal?: AbortSignal; body?: GuestBody; checkpoint?: () => void | Promise<void> } = {},
  ): Promise<GuestResponse> {
    this.#beginInvocation(options.signal, options.body);
    const given = await requestFor(this.#world, request, options.body);
    // A promise under JSPI: the guest's stack suspends while it waits (a timer, a fetch, body bytes).
    return this.#metered(
      fuelLimit,
      () => this.#handler.handle(given, { requestId, functionName: this.#name }),
      options.checkpoint,
    );
  }

  /** Runs the guest's init() within `fuelLimit`, as `handle` runs a request; false if it has none. */
  async init(fuelLimit: number): Promise<boolean> {
    const lifecycle = this.#lifecycle;
    if (!lifecycle || typeof lifecycle.init !== "function") return false;
    this.#beginInvocation();
    await this.#metered(fuelLimit, () => lifecycle.init());
    return true;
  }

  /**
   * Runs the handler's path once with a sample request that the SDK answers
   * itself, without calling the function's fetch (`warm-up` in
   * sdk/wit/world.wit), within `fuelLimit`; false if the component cannot
   * (not built by the SDK, or by one from before warm-ups). Only for an
   * instance a snapshot is taken of: it leaves in memory the guest code
   * compiled on the way, which a new instance's first request then need
   * not compile (measured on hello: that request used 39% more fuel than a
   * later one without a warm-up, 8–20% more with, depending on how much
   * of the function's own code the request runs).
   */
  async warmUp(fuelLimit: number): Promise<boolean> {
    const warmUp = this.#warmUp;
    if (!warmUp || typeof warmUp.begin !== "function") return false;
    this.#beginInvocation();
    await this.#metered(fuelLimit, () => {
      warmUp.begin();
      return this.#handler.handle(WARM_UP_REQUEST, { requestId: "warm-up", functionName: this.#name });
    });
    return true;
  }

  /**
   * Until `stop()`, notes the host functions that handed the guest a
   * resource (an instance of one of the imported classes), as
   * `interface#function`: a snapshot cannot hold those, since a resource's
   * handle lives in the glue's tables, not in memory.
   */
  watchResources(): { stop(): Set<string> } {
    const resources = new Set<string>();
    const imports = this.#imports;
    const bind = this.#bind;
    if (!imports || !bind) return { stop: () => resources };
    const classes = Object.values(imports).flatMap((members) =>
      Object.values(members).filter((value): value is new (...a: never[]) => unknown => isClass(value)),
    );
    const watched: Imports = {};
    for (const [namespace, members] of Object.entries(imports)) {
      watched[namespace] = Object.fromEntries(
        Object.entries(members).map(([name, value]) => [
          name,
          typeof value === "function" && !isClass(value)
            ? (...args: unknown[]) => {
                const result = (value as (...a: unknown[]) => unknown)(...args);
                if (classes.some((type) => result instanceof type)) {
                  resources.add(`${namespace.replace(/@.*$/, "")}#${name}`);
                }
                return result;
              }
            : value,
        ]),
      );
    }
    bind(watched);
    return {
      stop() {
        bind(imports);
        return resources;
      },
    };
  }

  /** The core instances, in the order they were made: what a snapshot reads. */
  get cores(): readonly CoreInstance[] {
    return this.#parts.cores;
  }

  /**
   * What the call under way has used so far (plus instantiation on a first
   * call): for an invocation cancelled while it waits, whose call never
   * returns (its suspended stack is abandoned with the instance).
   */
  fuelSoFar(): number {
    const used = this.#running?.usedSoFar() ?? 0n;
    return Number(used < 0n ? 0n : used) + this.#pendingFuel;
  }

  /** The meter of the call under way. */
  #running: FuelMeter | undefined;

  async #metered<T>(fuelLimit: number, call: () => T | Promise<T>, onRefill?: () => void | Promise<void>): Promise<T> {
    // One budget for all the component's core modules, handed out in slices (fuel-meter.ts).
    const fuel = new FuelMeter(BigInt(fuelLimit), onRefill ? { onRefill } : {});
    this.#running = fuel;
    if (this.#parts.fuel) fuel.attach(this.#parts.fuel);
    for (const global of this.#parts.memoryRefused) global.value = 0;
    let response: T | undefined;
    let failure: unknown;
    try {
      response = await call();
    } catch (error) {
      failure = error;
    }
    const spent = spentOf(fuel);
    this.exhausted = spent.exhausted;
    this.lastFuel = spent.used + this.#pendingFuel;
    this.#pendingFuel = 0;
    // What stopped the guest at a refill (FuelMeterOptions.onRefill), rather than the trap it caused.
    if (spent.halted) throw spent.halted.error;
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
    if (failure !== undefined) throw guestError(failure, this.#denials);
    return response as T;
  }
}
