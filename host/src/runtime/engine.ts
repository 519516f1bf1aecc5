/**
 * Instantiating a component in two steps, so that the expensive one can run
 * before a request needs it.
 *
 * `prepare` instantiates the jco glue and its core modules against imports
 * that are bound later: each import function is a trampoline to whatever
 * `bind` installs. Nothing of any function is in a prepared instance yet: no
 * guest code has run (start functions are deferred, data is split off).
 * `bind` then makes it one function's instance: installs that function's
 * imports, sets the fuel and memory limits, and writes the function's
 * memory image.
 *
 * Each worker keeps one prepared instance per engine it served recently
 * (every JS function of one SDK build has the same engine), made in idle
 * time, so a cold start does not pay the instantiation (~2 ms for the JS
 * engine). Its memories already hold the image the engine was last bound
 * with (writeBases), so binding writes only the pages of the function's
 * image that differ, the others already written and mapped: a new instance
 * of the same function writes almost nothing. Binding leaves memory exactly
 * as the function's image alone would (memory-image.ts, applyOver), and a
 * prepared instance is used once and never goes back, so no function ever
 * sees another's bytes or state.
 *
 * Only components whose modules have no start function and write no data at
 * instantiation can be prepared (DerivedMeta.engine): for them, binding
 * after all core modules exist is the same as binding each as it is made.
 */
import { monotonicNow } from "../capabilities/clocks.ts";
import { buildImports } from "../capabilities/index.ts";
import { LogSink } from "../capabilities/log-sink.ts";
import { FuelPort, instantiateMetered } from "./fuel-meter.ts";
import { pagedImage } from "./image-cache.ts";
import { applyPages, type WrittenPages } from "./memory-image.ts";
import type { FunctionImage } from "./types.ts";

type Imports = Record<string, Record<string, unknown>>;

export interface Glue {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: Record<string, unknown>,
    instantiateCore: (module: WebAssembly.Module, imports?: WebAssembly.Imports) => WebAssembly.Instance,
  ): Record<string, unknown>;
}

/** A core instance of the component, in the order the glue made them. */
export interface CoreInstance {
  /** The module's file name in the derived files (keys of FunctionImage.modules, meters, images). */
  name: string;
  instance: WebAssembly.Instance;
}

export interface Prepared {
  /** The component's exports, as the glue returns them. */
  root: Record<string, unknown>;
  cores: CoreInstance[];
  /** Installs the imports every trampoline calls into. */
  bind(imports: Imports): void;
  /** Per core module: the image its memory already holds (applyPages), which binding writes over. */
  bases: Map<string, WrittenPages>;
}

const glueCache = new Map<string, Promise<Glue>>();

/** The glue module; components of one engine share the same (the engine digest covers it). */
export function loadGlue(image: FunctionImage): Promise<Glue> {
  const key = image.engine ?? image.glueUrl;
  let glue = glueCache.get(key);
  if (!glue) {
    glue = import(image.glueUrl) as Promise<Glue>;
    glueCache.set(key, glue);
  }
  return glue;
}

/** Classes (resource types) are passed as they are: the glue checks results with instanceof them. */
export function isClass(value: unknown): boolean {
  return typeof value === "function" && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

let template: Imports | undefined;

/**
 * Imports whose functions call into what `bind` installs later; classes
 * (resource types, the same for every instance) are passed as they are.
 */
export function lateBoundImports(): { imports: Imports; bind(imports: Imports): void } {
  let bound: Imports | undefined;
  // Only its names and classes are used: the same for every instance, so built once.
  template ??= buildImports({ env: {}, sink: new LogSink(0), kv: { stores: [] }, denials: [] });
  const imports: Imports = {};
  for (const [namespace, members] of Object.entries(template)) {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(members)) {
      if (typeof value !== "function" || isClass(value)) {
        out[name] = value;
        continue;
      }
      out[name] = (...args: unknown[]) => {
        // Unreachable while no guest code runs before binding; a trap, not a host crash, if it ever does.
        if (!bound)
          throw new WebAssembly.RuntimeError(`import ${namespace}#${name} called before the instance was bound`);
        const target = bound[namespace]?.[name] as ((...a: unknown[]) => unknown) | undefined;
        if (!target) throw new WebAssembly.RuntimeError(`import ${namespace}#${name} is not bound`);
        return target(...args);
      };
    }
    imports[namespace] = out;
  }
  return {
    imports,
    bind(next) {
      bound = next;
    },
  };
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

/**
 * Runs the glue's instantiation with `imports`; `made` sees each core
 * instance as soon as it exists, before the next module is instantiated.
 */
export async function instantiateComponent(
  image: FunctionImage,
  imports: Imports,
  made: (core: CoreInstance) => void,
): Promise<Record<string, unknown>> {
  const glue = await loadGlue(image);
  // One fuel counter for all the component's core modules (fuel-meter.ts);
  // suspending, so that a long computation takes turns with other invocations.
  const fuel = new FuelPort({ suspending: true });
  const names = new Map<WebAssembly.Module, string>();
  for (const [name, module] of Object.entries(image.modules)) names.set(module, name);
  return glue.instantiate(
    (name) => {
      const module = image.modules[name];
      if (!module) throw new Error(`component asks for core module ${name}, which was not deployed`);
      return module;
    },
    imports,
    (module, coreImports) => {
      const name = names.get(module);
      if (name === undefined) throw new Error("the glue instantiated a core module that was not deployed");
      const instance = instantiateMetered(module, withDirectClock(coreImports), fuel);
      made({ name, instance });
      return instance;
    },
  );
}

/** Instantiates the component's core modules, nothing bound, nothing written. */
export async function prepare(image: FunctionImage): Promise<Prepared> {
  const cores: CoreInstance[] = [];
  const late = lateBoundImports();
  const root = await instantiateComponent(image, late.imports, (core) => cores.push(core));
  return { root, cores, bind: late.bind, bases: new Map() };
}

/** Per engine: the image each core module's memory was last bound with, by core module. */
const lastImages = new Map<string, Map<string, string>>();

/** Notes the image a memory of this engine was bound with: the next spare holds it already. */
export function rememberImage(engine: string, core: string, path: string): void {
  let images = lastImages.get(engine);
  if (!images) {
    images = new Map();
    lastImages.set(engine, images);
  }
  images.set(core, path);
}

/**
 * Writes into a spare's memories the images its engine was last bound
 * with, if they are cached (pagedImage; paged now if `page`, which takes a
 * few ms). Binding then writes only the pages that differ: a new instance
 * of the same function writes almost none, another JS function about a
 * third of its image. It also maps the pages now, a page fault costing
 * ~1.5 µs here.
 */
function writeBases(spare: Prepared, image: FunctionImage, page: boolean): void {
  const images = lastImages.get(image.engine as string);
  for (const { name, instance } of spare.cores) {
    const path = images?.get(name);
    const paged = path === undefined ? undefined : pagedImage(path, page);
    const memory = instance.exports[image.meters[name]?.memory ?? ""];
    if (paged && memory instanceof WebAssembly.Memory) spare.bases.set(name, applyPages(memory, paged));
  }
}

/** Engines whose prepared instances a worker keeps, and for how long one goes unused. */
const MAX_ENGINES = 4;
const UNUSED_ENGINE_MS = 5 * 60_000;

interface SpareSlot {
  /** A function of this engine, to prepare from (any will do: only the engine matters). */
  image: FunctionImage;
  spare: Prepared | undefined;
  lastWanted: number;
}

/** Per worker: engine digest → its prepared instance, least recently wanted first. */
const slots = new Map<string, SpareSlot>();
let refilling = false;

/** The prepared instance of the image's engine, if one is ready; it is the caller's from now on. */
export function takeSpare(image: FunctionImage): Prepared | undefined {
  if (!image.engine) return undefined;
  const slot = slots.get(image.engine);
  slots.delete(image.engine);
  slots.set(image.engine, {
    image,
    spare: undefined,
    lastWanted: Date.now(),
  });
  while (slots.size > MAX_ENGINES) slots.delete(slots.keys().next().value as string);
  return slot?.spare;
}

/**
 * Making a spare blocks the worker for one instantiation (about 6 ms for a
 * JS engine), so it waits until the worker has had no task for QUIET_MS:
 * the requests that follow a cold start (the same function again, to the
 * same worker) would otherwise queue behind it. Under load with no such
 * pause, a spare missing for MAX_WAIT_MS is made at the next turn anyway,
 * whether or not a task has started meanwhile.
 */
const QUIET_MS = 25;
const MAX_WAIT_MS = 1000;
let refillTimer: NodeJS.Timeout | undefined;
/** When the worker first went without a spare it wants, or 0. */
let missingSince = 0;

/** A refill that has waited MAX_WAIT_MS: a starting task no longer holds it back. */
let overdue = false;

/** A task starts: no spare is made while it runs, unless one is overdue. */
export function holdSpares(): void {
  if (overdue) return;
  clearTimeout(refillTimer);
  refillTimer = undefined;
}

/** A task ended: makes the missing prepared instances, one at a time, once the worker is quiet. */
export function refillSpares(): void {
  if (refilling || (overdue && refillTimer)) return;
  holdSpares();
  const now = Date.now();
  for (const [engine, slot] of slots) if (now - slot.lastWanted > UNUSED_ENGINE_MS) slots.delete(engine);
  const next = [...slots.values()].find((slot) => !slot.spare);
  if (!next) {
    missingSince = 0;
    return;
  }
  missingSince ||= now;
  overdue = now - missingSince >= MAX_WAIT_MS;
  refillTimer = setTimeout(
    async () => {
      refillTimer = undefined;
      // Under load (overdue), no paging: a request may be waiting.
      const quiet = !overdue;
      overdue = false;
      refilling = true;
      try {
        const spare = await prepare(next.image);
        writeBases(spare, next.image, quiet);
        if (slots.get(next.image.engine as string) === next) next.spare = spare;
      } catch {
        // A component that cannot be prepared fails its own request on the normal path.
        slots.delete(next.image.engine as string);
      } finally {
        refilling = false;
        missingSince = 0;
      }
      refillSpares();
    },
    overdue ? 0 : QUIET_MS,
  );
}
