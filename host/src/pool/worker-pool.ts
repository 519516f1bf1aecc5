/**
 * The worker threads that run invocations, and the main thread's side of
 * each one's port (worker/protocol.ts). A worker runs up to `concurrency`
 * invocations at once (worker/main.ts); past that on every worker, an
 * invocation waits here, first come first served, in a bounded queue.
 *
 * Each invocation's wall-clock limit is the worker's to enforce: it ends
 * that invocation alone, where it waits. A worker that does not answer
 * BACKSTOP_MS after a limit (a guest computing without reaching a point
 * where it can be stopped, or a host bug) is terminated and replaced: the
 * last resort, which fails the invocations it had started with a coded
 * error. A worker that exits is replaced the same way. Invocations posted
 * to it that it never began (its thread was blocked) are not lost: they go
 * to another worker, since nothing of them ran (the worker counts what it
 * began in memory both threads share).
 */
import { Worker } from "node:worker_threads";
import { type ErrorCode, JouleError } from "../errors.ts";
import type { FunctionImage, InvokeResult, InvokeTask } from "../runtime/types.ts";
import { UNKEPT } from "../worker/kept-images.ts";
import type { FromWorker, ToWorker } from "../worker/protocol.ts";
import { place } from "./placement.ts";
import { SentImages } from "./sent-images.ts";

export interface PoolOptions {
  workers: number;
  /** Invocations one worker runs at once (JOULE_WORKER_CONCURRENCY). */
  concurrency: number;
}

/** How long past an invocation's limit its worker may stay silent before it is replaced. */
const BACKSTOP_MS = 2000;

/** Invocations that may wait for room in a worker, per worker. */
const QUEUE_PER_WORKER = 512;

/** How long closing waits for workers to stop reading images. */
const STOP_PRELOADS_MS = 2000;

/** A task as the pool takes it: the image is its own business (sent-images.ts). */
export type PoolTask = Omit<InvokeTask, "imageId">;

/** Where a streamed response goes as the worker sends it (worker/invocation-body.ts). */
export interface ResponseSink {
  head(status: number, headers: Array<[string, string]>): void;
  /** Settles once the client took the bytes: the guest may then write as much again. */
  chunk(bytes: Uint8Array): Promise<void>;
}

/** What comes with a task besides itself: how it may be cancelled, and its streamed bodies. */
export interface InvokeOptions {
  /** Cancels it (the client went away). */
  signal?: AbortSignal | undefined;
  /** The rest of a request body (`request.bodyStreamed`), as it arrives; throws why it stops early. */
  requestBody?: AsyncIterable<Uint8Array> | undefined;
  sink?: ResponseSink | undefined;
}

interface Pending {
  /** Its place among the invocations posted to its worker (1, 2, ...): began once the worker's count reaches it. */
  seq: number;
  task: PoolTask;
  options: InvokeOptions;
  fn: string;
  timeoutMs: number;
  sentAt: number;
  resolve(result: InvokeResult): void;
  reject(error: unknown): void;
  backstop: NodeJS.Timeout;
  stopListening(): void;
}

interface Slot {
  index: number;
  worker: Worker;
  inFlight: Map<number, Pending>;
  /** Instances of each function the worker holds, as it last said. */
  warm: Map<string, number>;
  /** Invocations of each function in flight on it. */
  busy: Map<string, number>;
  /** Being replaced: no new invocations. */
  leaving: boolean;
  /** Invocations posted to it so far. */
  posted: number;
  /** Invocations it began, counted by the worker itself (worker/main.ts). */
  began: Int32Array;
}

interface Waiter {
  fn: string;
  go(slot: Slot): void;
  fail(error: unknown): void;
}

export class WorkerPool {
  readonly #options: PoolOptions;
  readonly #slots: Slot[] = [];
  readonly #waiting: Waiter[] = [];
  readonly #sent = new SentImages();
  #nextId = 1;
  #closed = false;
  #imagesSent = 0;
  /** Time invocations spent in workers, for the utilization metric. */
  #busyUs = 0;
  readonly #startedAt = performance.now();

  constructor(options: PoolOptions) {
    this.#options = options;
    for (let i = 0; i < options.workers; i++) this.#slots.push(this.#spawn(i));
  }

  /** Runs a task on a worker with room, waiting for one if none has. `signal` cancels it (the client went away). */
  async invoke(task: PoolTask, options: InvokeOptions = {}): Promise<InvokeResult> {
    if (this.#closed) throw new JouleError("JOULE_ERR_HOST_NOT_READY", "the host is stopping");
    const { signal } = options;
    const fn = task.image.name;
    const slot = this.#place(fn);
    if (slot) return this.#dispatch(slot, task, options);
    if (this.#waiting.length >= this.#slots.length * QUEUE_PER_WORKER) {
      throw new JouleError("JOULE_ERR_HOST_NOT_READY", "too many requests are queued; retry later");
    }
    return new Promise<InvokeResult>((resolve, reject) => {
      const waiter: Waiter = {
        fn,
        go: (chosen) => {
          signal?.removeEventListener("abort", gone);
          this.#dispatch(chosen, task, options).then(resolve, reject);
        },
        fail: reject,
      };
      // A caller that goes away while queued is simply taken out of the queue.
      const gone = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(new JouleError("JOULE_ERR_REQUEST_CANCELLED", "the client went away before the function was run"));
      };
      signal?.addEventListener("abort", gone, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #place(fn: string): Slot | undefined {
    const loads = this.#slots.map((slot) => ({
      inFlight: slot.leaving ? Number.POSITIVE_INFINITY : slot.inFlight.size,
      warm: slot.warm.get(fn) ?? 0,
      busy: slot.busy.get(fn) ?? 0,
    }));
    const index = place(loads, this.#options.concurrency);
    return index < 0 ? undefined : this.#slots[index];
  }

  #dispatch(slot: Slot, task: PoolTask, options: InvokeOptions): Promise<InvokeResult> {
    const { signal } = options;
    const id = this.#nextId++;
    const fn = task.image.name;
    const imageId = this.#sent.idOf(task.image);
    const carries = !this.#sent.holds(slot.index, imageId);
    if (carries && imageId !== UNKEPT) this.#imagesSent++;
    const sent: InvokeTask = carries
      ? { ...task, imageId }
      : { ...task, imageId, image: undefined as unknown as FunctionImage };
    return new Promise<InvokeResult>((resolve, reject) => {
      const cancel = () => this.#post(slot, { type: "cancel", id, reason: "disconnected" });
      signal?.addEventListener("abort", cancel, { once: true });
      const pending: Pending = {
        seq: ++slot.posted,
        task,
        options,
        fn,
        timeoutMs: task.timeoutMs,
        sentAt: Date.now(),
        resolve,
        reject,
        // The worker ends the invocation at its limit; silence well past it means the worker is stuck.
        backstop: setTimeout(() => this.#replace(slot, id), task.timeoutMs + BACKSTOP_MS),
        stopListening: () => signal?.removeEventListener("abort", cancel),
      };
      slot.inFlight.set(id, pending);
      slot.busy.set(fn, (slot.busy.get(fn) ?? 0) + 1);
      this.#post(slot, { type: "invoke", id, task: sent });
      if (options.requestBody) void this.#forwardBody(slot, id, options.requestBody);
    });
  }

  /** Forwards a streamed request body to the worker running its invocation, as it arrives. */
  async #forwardBody(slot: Slot, id: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const bytes of body) {
        if (!slot.inFlight.has(id)) return; // answered already: the rest is not needed
        this.#post(slot, { type: "body", id, bytes });
      }
      this.#post(slot, { type: "body-end", id });
    } catch (error) {
      const why = error instanceof JouleError ? error.message : "the client stopped sending the body";
      if (slot.inFlight.has(id)) this.#post(slot, { type: "body-end", id, error: why });
    }
  }

  #post(slot: Slot, message: ToWorker): void {
    slot.worker.postMessage(message);
  }

  #spawn(index: number): Slot {
    const began = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL("../worker/main.ts", import.meta.url), { workerData: { began } });
    const slot: Slot = {
      index,
      worker,
      inFlight: new Map(),
      warm: new Map(),
      busy: new Map(),
      leaving: false,
      posted: 0,
      began,
    };
    worker.on("message", (message: FromWorker) => this.#receive(slot, message));
    worker.on("error", () => {
      // An uncaught error ends the worker: `exit` follows and replaces it.
    });
    worker.on("exit", () => this.#lost(slot));
    return slot;
  }

  #receive(slot: Slot, message: FromWorker): void {
    if (message.type === "head") {
      slot.inFlight.get(message.id)?.options.sink?.head(message.status, message.headers);
    } else if (message.type === "chunk") {
      const sink = slot.inFlight.get(message.id)?.options.sink;
      const bytes = message.bytes.byteLength;
      // Credit goes back once the client took them (or at once, if nobody streams: never the case).
      void (sink ? sink.chunk(message.bytes) : Promise.resolve()).then(
        () => {
          if (slot.inFlight.has(message.id)) this.#post(slot, { type: "credit", id: message.id, bytes });
        },
        () => {},
      );
    } else if (message.type === "done") {
      const pending = slot.inFlight.get(message.id);
      if (!pending) return;
      this.#settle(slot, message.id, pending);
      slot.warm.set(pending.fn, message.warm);
      this.#busyUs += message.result.stats.durationUs;
      pending.resolve(message.result);
      this.#next();
    } else if (message.type === "warm") {
      if (message.warm === 0) slot.warm.delete(message.fn);
      else slot.warm.set(message.fn, message.warm);
    } else if (message.type === "stopped") {
      this.#stopWaits.get(slot)?.();
    }
  }

  #settle(slot: Slot, id: number, pending: Pending): void {
    clearTimeout(pending.backstop);
    pending.stopListening();
    slot.inFlight.delete(id);
    const busy = (slot.busy.get(pending.fn) ?? 1) - 1;
    if (busy > 0) slot.busy.set(pending.fn, busy);
    else slot.busy.delete(pending.fn);
  }

  /** Hands freed room to the invocations waiting for it, in order. */
  #next(): void {
    while (this.#waiting.length > 0) {
      const slot = this.#place((this.#waiting[0] as Waiter).fn);
      if (!slot) return;
      (this.#waiting.shift() as Waiter).go(slot);
    }
  }

  /** The last resort: a worker that stayed silent past an invocation's limit is terminated and replaced. */
  #replace(slot: Slot, overdue: number): void {
    if (slot.leaving) return;
    slot.leaving = true;
    const pending = slot.inFlight.get(overdue);
    if (pending) {
      this.#settle(slot, overdue, pending);
      pending.reject(
        new JouleError("JOULE_ERR_LIMIT_TIMEOUT", `the function ran past its limit of ${pending.timeoutMs} ms`, {
          timeoutMs: pending.timeoutMs,
        }),
      );
    }
    void slot.worker.terminate();
  }

  /**
   * A worker exited (terminated, or crashed): what it had begun fails, what
   * it never began goes to another worker, and a new one takes its place.
   */
  #lost(slot: Slot): void {
    slot.leaving = true;
    this.#stopWaits.get(slot)?.();
    const began = Atomics.load(slot.began, 0);
    const again: Pending[] = [];
    for (const [id, pending] of slot.inFlight) {
      this.#settle(slot, id, pending);
      // Not begun: safe to run elsewhere, unless part of a streamed body went to the lost worker already.
      if (pending.seq > began && !this.#closed && !pending.options.requestBody) {
        again.push(pending);
        continue;
      }
      const late = Date.now() - pending.sentAt > pending.timeoutMs;
      const code: ErrorCode = late ? "JOULE_ERR_LIMIT_TIMEOUT" : "JOULE_ERR_HOST_WORKER_LOST";
      pending.reject(
        new JouleError(
          code,
          late
            ? `the function ran past its limit of ${pending.timeoutMs} ms`
            : "the worker running the function had to be replaced; retry the request",
        ),
      );
    }
    this.#sent.reset(slot.index);
    if (this.#closed) return;
    const index = this.#slots.indexOf(slot);
    if (index >= 0) this.#slots[index] = this.#spawn(slot.index);
    for (const pending of again) {
      this.invoke(pending.task, pending.options).then(pending.resolve, pending.reject);
    }
    this.#next();
  }

  /** Has every worker read the function's memory images while idle (runtime/image-cache.ts). */
  preload(image: FunctionImage): void {
    // Paged too where a spare will hold an image of the engine: binding then writes only what differs.
    const message: ToWorker = {
      type: "preload",
      paths: Object.values(image.images),
      paged: image.engine !== undefined,
    };
    for (const slot of this.#slots) this.#post(slot, message);
  }

  /** No task will use `image` again: the workers holding it drop it. */
  retire(image: FunctionImage): void {
    const retired = this.#sent.retire(image);
    if (!retired || this.#closed) return;
    for (const index of retired.workers) {
      const slot = this.#slots.find((s) => s.index === index);
      if (slot) this.#post(slot, { type: "retire", imageId: retired.id });
    }
  }

  get threads(): number {
    return this.#slots.length;
  }

  /** Instances each function has in the workers, idle and in use. */
  instances(): Map<string, number> {
    const total = new Map<string, number>();
    for (const slot of this.#slots) {
      for (const [fn, count] of slot.warm) total.set(fn, (total.get(fn) ?? 0) + count);
    }
    return total;
  }

  /** Invocations in flight over all workers. */
  get inFlight(): number {
    return this.#slots.reduce((n, slot) => n + slot.inFlight.size, 0);
  }

  /** Share of the workers' time spent running invocations since the pool started, 0..1. */
  get utilization(): number {
    const elapsedUs = (performance.now() - this.#startedAt) * 1000 * this.#slots.length;
    return elapsedUs > 0 ? Math.min(1, this.#busyUs / elapsedUs) : 0;
  }

  get imagesSent(): number {
    return this.#imagesSent;
  }

  get queueSize(): number {
    return this.#waiting.length;
  }

  readonly #stopWaits = new Map<Slot, () => void>();

  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0)) {
      waiter.fail(new JouleError("JOULE_ERR_HOST_NOT_READY", "the host is stopping"));
    }
    // A worker terminated while it decompresses an image can abort the whole process: stop that first.
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, STOP_PRELOADS_MS);
            this.#stopWaits.set(slot, () => {
              clearTimeout(timer);
              resolve();
            });
            this.#post(slot, { type: "stop" });
          }),
      ),
    );
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }
}
