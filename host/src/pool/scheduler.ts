/**
 * Hands invocations to the piscina worker pool (one invocation per worker
 * at a time) and bounds each by its wall-clock limit: a task still running
 * at its deadline is aborted, piscina terminates that worker and starts a
 * fresh one, and the other queued tasks carry on.
 */
import { Piscina } from "piscina";
import { JouleError } from "../errors.ts";
import type { InvokeResult, InvokeTask } from "../runtime/types.ts";

export interface SchedulerOptions {
  workers: number;
}

export class Scheduler {
  readonly #pool: Piscina<InvokeTask, InvokeResult>;

  constructor(options: SchedulerOptions) {
    this.#pool = new Piscina({
      filename: new URL("./worker.ts", import.meta.url).href,
      minThreads: options.workers,
      maxThreads: options.workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      maxQueue: options.workers * 512,
    });
  }

  async invoke(task: InvokeTask, timeoutMs: number): Promise<InvokeResult> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await this.#pool.run(task, { signal });
    } catch (error) {
      if (signal.aborted) {
        throw new JouleError("JOULE_ERR_LIMIT_TIMEOUT", `${task.image.name} ran past its limit of ${timeoutMs} ms`, {
          timeoutMs,
        });
      }
      if ((error as Error).message?.includes("Task queue is at limit")) {
        throw new JouleError("JOULE_ERR_HOST_NOT_READY", "too many requests are queued; retry later");
      }
      throw error;
    }
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /** Share of the pool's capacity used since it started, 0..1. */
  get utilization(): number {
    return this.#pool.utilization;
  }

  get queueSize(): number {
    return this.#pool.queueSize;
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
