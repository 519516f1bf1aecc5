/**
 * One invocation inside a worker, beside the others the worker runs at the
 * same time: take an idle instance of the function (or make one), run the
 * request within the function's limits, answer with the figures. Its
 * wall-clock limit starts once a cold start has read its memory images and
 * ends only this invocation: a waiting guest is cancelled where it waits
 * (capabilities/io.ts) and its instance dropped, the worker and its other
 * invocations untouched. Failures come back as `{ code, message }`, never
 * as a thrown host error, so nothing of the worker's stack or paths leaves
 * the thread.
 */
import { threadId } from "node:worker_threads";
import { InvocationCancelled } from "../capabilities/io.ts";
import { JouleError, type WireError } from "../errors.ts";
import { loadImage } from "../runtime/image-cache.ts";
import { FunctionInstance, GuestFailure, InstantiationFailure } from "../runtime/instance.ts";
import { checkResponse, sanitize } from "../runtime/response.ts";
import { takeSnapshot } from "../runtime/snapshot.ts";
import type { InvokeResult, InvokeStats, InvokeTask } from "../runtime/types.ts";
import { storageError, storageFault } from "../store/storage-error.ts";
import { type BodyWire, InvocationBody } from "./invocation-body.ts";
import type { WarmInstances } from "./warm-instances.ts";

/** Growth past an instance's initial memory after which it is dropped rather than kept warm. */
const RECYCLE_AFTER_GROWTH_BYTES = 32 * 1024 * 1024;

const NO_CONTENT = { status: 204, headers: [], body: new Uint8Array() };

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

/**
 * Reads a new instance's memory images before the task's wall-clock limit
 * starts: that reading is bounded by the images' size, not by anything the
 * guest does. A failure is left for the instantiation to report.
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

/**
 * Continuous computing after which an invocation lets the worker run others
 * (at its next fuel refill, a few ms of CPU apart): CPU-bound guests on one
 * worker take turns instead of one holding it to the end.
 */
const TURN_MS = 10;

/** Why an invocation was ended early, once it was. */
export type CancelReason = "timeout" | "disconnected";

export class Invocation {
  readonly #task: InvokeTask;
  readonly #warm: WarmInstances;
  readonly #controller = new AbortController();
  #cancelled: CancelReason | undefined;
  /** Its request body as it arrives, and the response it streams, if it does (invocation-body.ts). */
  readonly body: InvocationBody;

  constructor(task: InvokeTask, warm: WarmInstances, wire: BodyWire) {
    this.#task = task;
    this.#warm = warm;
    this.body = new InvocationBody(wire, task.request.body, task.request.bodyStreamed);
  }

  /** Whether it started a streamed response (the main thread has its head already). */
  get streamed(): boolean {
    return this.body.responded;
  }

  /** Ends the invocation where it waits; it answers with why. */
  cancel(reason: CancelReason): void {
    if (this.#cancelled) return;
    this.#cancelled = reason;
    const why = reason === "timeout" ? "the invocation ran past its time limit" : "the client went away";
    this.#controller.abort(new InvocationCancelled(why));
    this.body.close(why);
  }

  async run(): Promise<InvokeResult> {
    const task = this.#task;
    const name = task.image.name;
    const started = performance.now();
    if (this.#cancelled) {
      // Cancelled while it waited its turn (worker/main.ts): nothing ran, nothing is billed.
      const nothing = { coldStart: false, prepared: false, fuel: 0, durationUs: 0, memoryBytes: 0, threadId };
      return { ok: false, error: this.#cancelledWire(), stats: nothing, logs: [], droppedLogs: 0, denials: [] };
    }
    const keeps = { idleTimeoutMs: task.idleTimeoutMs, keep: task.keepWarm };
    // A snapshot's instance is its own: never taken from or given to the warm ones.
    let instance = task.snapshot ? undefined : this.#warm.take(name, task.image.version, keeps);
    const coldStart = instance === undefined;
    if (coldStart) readImagesUntimed(task.image);
    const deadline = setTimeout(() => this.cancel("timeout"), task.timeoutMs);
    const deadlineAt = performance.now() + task.timeoutMs;
    // A cancelled call never settles its accounting: what it used so far is read from its meters.
    const used = () => (this.#cancelled && instance ? instance.fuelSoFar() : (instance?.lastFuel ?? 0));
    const stats = (memoryBytes: number, fuel = used()): InvokeStats => ({
      coldStart,
      prepared: coldStart && instance?.prepared === true,
      fuel,
      durationUs: Math.round((performance.now() - started) * 1000),
      memoryBytes,
      threadId,
    });
    let reusable = false;
    try {
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
          const failure = error instanceof InstantiationFailure ? error : undefined;
          return {
            ok: false,
            error: this.#cancelled ? this.#cancelledWire() : toWire(error, "instantiate"),
            stats: stats(0, failure?.used ?? 0),
            logs: [],
            droppedLogs: 0,
            denials: failure?.denials ?? [],
          };
        }
      }
      if (task.snapshot) {
        // Never kept or counted: it ran init without the function's secrets, for the snapshot only.
        try {
          const snapshot = await takeSnapshot(instance, task.image, task.fuelLimit);
          return { ok: true, response: NO_CONTENT, snapshot, ...drained(instance, stats) };
        } catch (error) {
          return { ok: false, error: this.#failure(error), ...drained(instance, stats) };
        }
      }
      if (task.warmOnly) {
        reusable = true;
        return { ok: true, response: NO_CONTENT, ...drained(instance, stats) };
      }
      try {
        const signal = this.#controller.signal;
        const raw = await Promise.race([
          instance.handle(task.request, task.requestId, task.fuelLimit, {
            signal,
            body: this.body,
            checkpoint: this.#checkpoint(deadlineAt),
          }),
          // A cancelled guest's suspended call may never return (jco leaves it pending once its host
          // call fails): the invocation answers now, and the instance is abandoned with it.
          this.#whenCancelled(),
        ]);
        const response = checkResponse(raw, task.maxResponseBytes);
        reusable = this.#keepable(instance);
        return { ok: true, response, ...drained(instance, stats) };
      } catch (error) {
        // After a trap, a cancellation or an exhausted limit the instance's state cannot be trusted.
        reusable = reusableAfter(error) && this.#keepable(instance);
        return { ok: false, error: this.#failure(error), ...drained(instance, stats) };
      }
    } finally {
      clearTimeout(deadline);
      this.body.close("the invocation is over");
      if (!task.snapshot) this.#warm.release(name, instance, reusable);
      // An instance that is not kept lets go of what it held: the upstream sees its connections close.
      if (!reusable) instance?.close();
    }
  }

  /**
   * What runs at each fuel refill of the request (runtime/fuel-meter.ts): a
   * guest computing past its deadline is stopped there, inside the guest
   * (the worker's timer cannot fire while the thread computes), so only this
   * invocation ends; one that computed TURN_MS without waiting yields the
   * worker for a turn of its event loop.
   */
  #checkpoint(deadlineAt: number): () => void | Promise<void> {
    let since = performance.now();
    return () => {
      const now = performance.now();
      if (!this.#cancelled && now >= deadlineAt) this.cancel("timeout");
      if (this.#cancelled) throw new InvocationCancelled(String(this.#cancelled));
      if (now - since < TURN_MS) return;
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          since = performance.now();
          resolve();
        }),
      );
    };
  }

  /** Rejects once the invocation is cancelled. */
  #whenCancelled(): Promise<never> {
    const signal = this.#controller.signal;
    return new Promise<never>((_, reject) => {
      const fail = () => reject(new InvocationCancelled(String(this.#cancelled)));
      if (signal.aborted) fail();
      else signal.addEventListener("abort", fail, { once: true });
    });
  }

  /** Whether the instance may serve again: its function reuses instances, nothing is left pending, it did not grow. */
  #keepable(instance: FunctionInstance): boolean {
    const grown = instance.memoryBytes() - instance.initialMemoryBytes > RECYCLE_AFTER_GROWTH_BYTES;
    return this.#task.isolation === "reuse" && !grown && instance.settled && !this.#cancelled;
  }

  #failure(error: unknown): WireError {
    if (this.#cancelled && (error instanceof InvocationCancelled || !(error instanceof JouleError)))
      return this.#cancelledWire();
    return toWire(error, "handle");
  }

  #cancelledWire(): WireError {
    const task = this.#task;
    return this.#cancelled === "timeout"
      ? {
          code: "JOULE_ERR_LIMIT_TIMEOUT",
          message: `${task.image.name} ran past its limit of ${task.timeoutMs} ms`,
          details: { timeoutMs: task.timeoutMs },
        }
      : { code: "JOULE_ERR_REQUEST_CANCELLED", message: "the client went away before the function answered" };
  }
}

/** What a result carries besides its outcome: the figures, and the logs and denials drained from the instance. */
function drained(instance: FunctionInstance, stats: (memoryBytes: number) => InvokeStats) {
  const { lines, dropped } = instance.sink.drain();
  return { stats: stats(instance.memoryBytes()), logs: lines, droppedLogs: dropped, denials: instance.drainDenials() };
}
