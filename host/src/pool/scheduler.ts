/**
 * Hands invocations to the piscina worker pool (one invocation per worker
 * at a time, preferring a worker that holds the function warm: affinity.ts)
 * and bounds each by its wall-clock limit, counted from when a
 * worker starts it, not from when it was queued: the worker stamps the
 * start into a shared cell (after reading a cold start's memory images:
 * worker.ts). A task still running at its deadline is
 * aborted; piscina terminates that worker and starts a fresh one, and the
 * other queued tasks carry on. A task carries its function's image only to a
 * worker that does not hold it yet (image-refs.ts).
 */
import { Piscina } from "piscina";
import { JouleError } from "../errors.ts";
import { PRELOAD_CHANNEL, type PreloadMessage } from "../runtime/image-cache.ts";
import type { FunctionImage, InvokeResult, InvokeTask } from "../runtime/types.ts";
import { Affinity, hint } from "./affinity.ts";
import { type ImageWanted, isImageWanted, SentImages } from "./image-refs.ts";

export interface SchedulerOptions {
  workers: number;
}

/** How often a deadline is looked at again while its task still waits in the queue. */
const QUEUED_RECHECK_MS = 10;

/** How long closing waits for workers to stop reading images. */
const STOP_PRELOADS_MS = 2000;

/** Invocations that may wait for a worker, per worker. */
const QUEUE_PER_WORKER = 512;

export class Scheduler {
  readonly #pool: Piscina<InvokeTask, InvokeResult | ImageWanted>;
  readonly #workers: number;
  /** Tasks handed to piscina: at most one per worker, so piscina never queues (see `invoke`). */
  #running = 0;
  /** Tasks waiting for a worker, first come first served. */
  readonly #waiting: Array<() => void> = [];
  readonly #affinity = new Affinity();
  readonly #sent = new SentImages(() => this.threadIds());
  #closed = false;
  /** Tasks that carried their image (the joule_pool_images_sent_total metric). */
  #imagesSent = 0;
  readonly #preload = new BroadcastChannel(PRELOAD_CHANNEL);

  constructor(options: SchedulerOptions) {
    this.#workers = options.workers;
    this.#pool = new Piscina({
      loadBalancer: this.#affinity.choose,
      filename: new URL("./worker.ts", import.meta.url).href,
      minThreads: options.workers,
      maxThreads: options.workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Idle workers must keep their event loop running: their timers drop idle instances.
      // ("sync" parks them in Atomics.wait between tasks.)
      atomics: "async",
    });
  }

  /**
   * Runs a task when a worker is free. The queue is Joule's, not piscina's:
   * piscina keeps tasks that carry an abort signal (all of ours) in a side
   * queue that its maxQueue does not count and that it reorders, so it only
   * ever gets as many tasks as it has workers.
   */
  async invoke(task: Omit<InvokeTask, "startedAt">, timeoutMs: number): Promise<InvokeResult> {
    if (this.#running < this.#workers) this.#running++;
    else {
      if (this.#waiting.length >= this.#workers * QUEUE_PER_WORKER) {
        throw new JouleError("JOULE_ERR_HOST_NOT_READY", "too many requests are queued; retry later");
      }
      // The finishing task hands its slot over: `#running` stays as it is.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    try {
      return await this.#run(task, timeoutMs);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }

  async #run(task: Omit<InvokeTask, "startedAt">, timeoutMs: number): Promise<InvokeResult> {
    const startedAt = new BigInt64Array(new SharedArrayBuffer(8));
    const controller = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const watch = (delay: number) => {
      timer = setTimeout(() => {
        const started = Number(Atomics.load(startedAt, 0));
        if (started === 0) return watch(QUEUED_RECHECK_MS);
        const left = started + timeoutMs - Date.now();
        if (left > 0) return watch(left);
        timedOut = true;
        controller.abort();
      }, delay);
    };
    watch(timeoutMs);
    try {
      const first = await this.#send(task, startedAt, controller.signal, true);
      if (!isImageWanted(first.result)) return first.result;
      // The worker lacked it (a retirement crossed the task): sent again, with the image this time.
      this.#sent.lost(first.worker, first.imageId);
      const again = await this.#send(task, startedAt, controller.signal, false);
      if (isImageWanted(again.result)) {
        throw new JouleError("JOULE_ERR_HOST_INTERNAL", "a worker refused a task that carried its image");
      }
      return again.result;
    } catch (error) {
      if (timedOut) {
        throw new JouleError("JOULE_ERR_LIMIT_TIMEOUT", `${task.image.name} ran past its limit of ${timeoutMs} ms`, {
          timeoutMs,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Posts a task, with its image unless `byReference` and the chosen worker holds it (image-refs.ts). */
  async #send(
    task: Omit<InvokeTask, "startedAt">,
    startedAt: BigInt64Array,
    signal: AbortSignal,
    byReference: boolean,
  ): Promise<{ result: InvokeResult | ImageWanted; worker: number; imageId: number }> {
    const imageId = this.#sent.idOf(task.image);
    const run: InvokeTask = { ...task, imageId, startedAt };
    let worker = -1;
    hint(run, {
      fn: task.image.name,
      chosen: (id) => {
        worker = id;
        if (this.#sent.holds(id, imageId) && byReference) run.image = undefined as unknown as FunctionImage;
        else this.#imagesSent++;
      },
    });
    return { result: await this.#pool.run(run, { signal }), worker, imageId };
  }

  /** Has every worker read the function's memory images while idle (runtime/image-cache.ts). */
  preload(image: FunctionImage): void {
    // Paged too where a spare will hold an image of the engine: binding then writes only what differs.
    const message: PreloadMessage = { paths: Object.values(image.images), paged: image.engine !== undefined };
    this.#preload.postMessage(message);
  }

  /** No task will use `image` again: workers drop it (image-refs.ts). */
  retire(image: FunctionImage): void {
    const id = this.#sent.retire(image);
    if (id !== undefined && !this.#closed) this.#preload.postMessage({ retire: id } satisfies PreloadMessage);
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  threadIds(): Set<number> {
    return new Set(this.#pool.threads.map((worker) => worker.threadId));
  }

  /** Share of the pool's capacity used since it started, 0..1. */
  get utilization(): number {
    return this.#pool.utilization;
  }

  get imagesSent(): number {
    return this.#imagesSent;
  }

  get queueSize(): number {
    return this.#waiting.length;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#affinity.close();
    await this.#stopPreloads();
    this.#preload.close();
    await this.#pool.destroy();
  }

  /** Has every worker stop reading images, so that none is terminated in the middle of one. */
  async #stopPreloads(): Promise<void> {
    const waiting = this.threadIds();
    if (waiting.size === 0) return;
    await new Promise<void>((resolve) => {
      // A worker that is busy or stuck is terminated anyway, after a while.
      const timer = setTimeout(resolve, STOP_PRELOADS_MS);
      this.#preload.onmessage = (event) => {
        const message = (event as MessageEvent<PreloadMessage>).data;
        if ("stopped" in message) waiting.delete(message.stopped);
        if (waiting.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.#preload.postMessage({ stop: true } satisfies PreloadMessage);
    });
  }
}
