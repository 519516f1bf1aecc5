/**
 * The piscina worker: runs one invocation at a time. It keeps warm instances
 * per function and reuses them across requests of the same function
 * version, never across functions; an instance that failed is dropped.
 * Failures come back as `{ code, message }`, never as a thrown host error,
 * so nothing of the worker's stack or paths leaves the thread.
 */
import { threadId } from "node:worker_threads";
import { JouleError, type WireError } from "../errors.ts";
import { holdSpares, refillSpares } from "../runtime/engine.ts";
import { holdPreloads, listenForPreloads, loadImage, resumePreloads } from "../runtime/image-cache.ts";
import { FunctionInstance, GuestFailure, InstantiationFailure } from "../runtime/instance.ts";
import { checkResponse, sanitize } from "../runtime/response.ts";
import { takeSnapshot } from "../runtime/snapshot.ts";
import {
  INSTANCES_CHANNEL,
  type InstanceCount,
  type InvokeResult,
  type InvokeStats,
  type InvokeTask,
} from "../runtime/types.ts";
import { storageError, storageFault } from "../store/storage-error.ts";
import { IMAGE_WANTED, type ImageWanted, KeptImages } from "./image-refs.ts";

/** The warm instance of one function in this worker (one task runs at a time, so one is enough). */
interface Warm {
  version: string;
  instance: FunctionInstance;
  lastUsed: number;
  idleTimeoutMs: number;
  keepWarm: boolean;
}

/** Warm instances by function name, least recently used first. */
const warm = new Map<string, Warm>();

/**
 * Functions a worker keeps warm instances of. Past it the least recently
 * used goes; workers are not told of deletes, so this also bounds what
 * deleted functions leave behind.
 */
const MAX_WARM_FUNCTIONS = 64;

/** Growth past an instance's initial memory after which it is dropped rather than kept warm. */
const RECYCLE_AFTER_GROWTH_BYTES = 32 * 1024 * 1024;

/** Tells the main thread (metrics) how many instances of a function this worker holds. */
const counts = new BroadcastChannel(INSTANCES_CHANNEL);
(counts as unknown as { unref?: () => void }).unref?.();

function report(fn: string, count: number): void {
  counts.postMessage({ threadId, fn, count } satisfies InstanceCount);
}

/** The function images this worker was sent (image-refs.ts). */
const images = new KeptImages();

listenForPreloads(threadId, (id) => images.forget(id));

/** Scale to zero: instances unused for their function's idle timeout are dropped. */
setInterval(() => {
  const now = Date.now();
  for (const [name, entry] of warm) {
    if (!entry.keepWarm && now - entry.lastUsed > entry.idleTimeoutMs) {
      warm.delete(name);
      report(name, 0);
    }
  }
}, 1000).unref();

function takeInstance(task: InvokeTask): FunctionInstance | undefined {
  const entry = warm.get(task.image.name);
  if (!entry) return undefined;
  warm.delete(task.image.name);
  if (entry.version !== task.image.version) return undefined; // the old version's instance goes
  return entry.instance;
}

function giveBack(instance: FunctionInstance, task: InvokeTask): void {
  const name = task.image.name;
  warm.set(name, {
    version: instance.version,
    instance,
    lastUsed: Date.now(),
    idleTimeoutMs: task.idleTimeoutMs,
    keepWarm: task.keepWarm,
  });
  if (warm.size > MAX_WARM_FUNCTIONS) {
    const oldest = warm.keys().next().value;
    if (oldest !== undefined) {
      warm.delete(oldest);
      report(oldest, 0);
    }
  }
}

/** Keeps the instance for the next request if the function's isolation and the instance's state allow. */
function keepOrDrop(instance: FunctionInstance, task: InvokeTask): void {
  const grown = instance.memoryBytes() - instance.initialMemoryBytes > RECYCLE_AFTER_GROWTH_BYTES;
  if (task.isolation === "reuse" && !grown) giveBack(instance, task);
  else report(task.image.name, 0);
}

const NO_CONTENT = { status: 204, headers: [], body: new Uint8Array() };

/** What a result carries besides its outcome: the figures, and the logs and denials drained from the instance. */
function drained(instance: FunctionInstance, stats: InvokeStats) {
  const { lines, dropped } = instance.sink.drain();
  return { stats, logs: lines, droppedLogs: dropped, denials: instance.drainDenials() };
}

/** Failures the guest came through intact: it returned, or threw out of its own code. */
const REUSABLE_AFTER = new Set([
  "JOULE_ERR_EXECUTION_BAD_RESPONSE",
  "JOULE_ERR_LIMIT_RESPONSE_TOO_LARGE",
  // A denial the guest did not catch: its handler threw, like any GuestFailure.
  "JOULE_ERR_CAPABILITY_DENIED",
]);

/** Whether an instance that failed this way can serve again: only the guest's own errors leave it sound. */
function reusableAfter(error: unknown): boolean {
  return error instanceof GuestFailure || (error instanceof JouleError && REUSABLE_AFTER.has(error.code));
}

function toWire(error: unknown, phase: "instantiate" | "handle"): WireError {
  if (error instanceof InstantiationFailure && error.exhausted) {
    return { code: "JOULE_ERR_LIMIT_FUEL", message: "making the instance used up the fuel limit (limits.fuel)" };
  }
  if (error instanceof InstantiationFailure && error.memoryRefused) {
    return { code: "JOULE_ERR_LIMIT_MEMORY", message: "making the instance needed more memory than limits.memoryMb" };
  }
  // init without a snapshot failed in the guest's own code: answered as a request's failure would be.
  if (
    error instanceof InstantiationFailure &&
    (error.cause instanceof GuestFailure || error.cause instanceof JouleError)
  )
    return toWire(error.cause, phase);
  if (error instanceof GuestFailure) return { code: "JOULE_ERR_EXECUTION_FAILED", message: sanitize(error.message) };
  if (error instanceof JouleError) return error.toWire();
  // The function's stored files (memory images, chunks) could not be read: the disk's fault, not the guest's.
  const fault = storageFault(error instanceof InstantiationFailure ? error.cause : error);
  if (fault) return storageError("functions", fault, "the function's stored files could not be read").toWire();
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const prefix = phase === "instantiate" ? "instantiation failed: " : "";
  return { code: "JOULE_ERR_EXECUTION_TRAP", message: sanitize(`${prefix}${text}`) };
}

export default async function invoke(task: InvokeTask): Promise<InvokeResult | ImageWanted> {
  const image = images.imageFor(task.imageId ?? 0, task.image);
  if (!image) return { [IMAGE_WANTED]: true };
  task.image = image;
  holdSpares();
  holdPreloads();
  try {
    return await run(task);
  } finally {
    resumePreloads();
    // Once the worker has been quiet a while: make the instance a cold start will want next.
    refillSpares();
  }
}

/**
 * Reads a new instance's memory images before the task's wall-clock limit
 * starts: a worker terminated at its limit while zstd decompresses aborts
 * the whole process (Node 24.21: "close before init" in node_zlib.cc). The
 * reading is bounded by the images' size, not by anything the guest does.
 * A failure is left for the instantiation to report.
 */
function readImagesUntimed(image: InvokeTask["image"]): void {
  for (const path of Object.values(image.images)) {
    try {
      loadImage(path);
    } catch {
      return;
    }
  }
}

async function run(task: InvokeTask): Promise<InvokeResult> {
  const started = performance.now();
  const name = task.image.name;
  let instance = task.snapshot ? undefined : takeInstance(task);
  const coldStart = instance === undefined;
  if (coldStart) readImagesUntimed(task.image);
  Atomics.store(task.startedAt, 0, BigInt(Date.now()));
  const stats = (memoryBytes: number, fuel = instance?.lastFuel ?? 0): InvokeStats => ({
    coldStart,
    prepared: coldStart && instance?.prepared === true,
    fuel,
    durationUs: Math.round((performance.now() - started) * 1000),
    memoryBytes,
    threadId,
  });

  if (!instance) {
    try {
      instance = await FunctionInstance.create(
        task.image,
        task.maxLogBytes,
        task.memoryLimitPages,
        task.fuelLimit,
        task.snapshot === true,
      );
    } catch (error) {
      // A failed instantiation is billed for what it ran, like any invocation.
      return {
        ok: false,
        error: toWire(error, "instantiate"),
        stats: stats(0, error instanceof InstantiationFailure ? error.used : 0),
        logs: [],
        droppedLogs: 0,
        denials: error instanceof InstantiationFailure ? error.denials : [],
      };
    }
    if (!task.snapshot) report(name, 1);
  }
  if (task.snapshot) {
    // Never kept or counted: it ran init without the function's secrets, for the snapshot only.
    try {
      const snapshot = await takeSnapshot(instance, task.image, task.fuelLimit);
      return { ok: true, response: NO_CONTENT, snapshot, ...drained(instance, stats(instance.memoryBytes())) };
    } catch (error) {
      return { ok: false, error: toWire(error, "handle"), ...drained(instance, stats(instance.memoryBytes())) };
    }
  }
  if (task.warmOnly) {
    giveBack(instance, task);
    return {
      ok: true,
      response: NO_CONTENT,
      stats: stats(instance.memoryBytes()),
      logs: [],
      droppedLogs: 0,
      denials: [],
    };
  }

  try {
    const raw = await instance.handle(task.request, task.requestId, task.fuelLimit);
    const response = checkResponse(raw, task.maxResponseBytes);
    // Memory never shrinks: an instance that grew well past its start is not kept.
    keepOrDrop(instance, task);
    return { ok: true, response, ...drained(instance, stats(instance.memoryBytes())) };
  } catch (error) {
    // After a trap or an exhausted limit the instance's state cannot be trusted; it is dropped.
    if (reusableAfter(error)) keepOrDrop(instance, task);
    else report(name, 0);
    return { ok: false, error: toWire(error, "handle"), ...drained(instance, stats(instance.memoryBytes())) };
  }
}
