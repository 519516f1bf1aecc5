/**
 * Worker affinity: a request goes to an idle worker that already holds a
 * warm instance of its function, when there is one, instead of making a
 * second instance elsewhere (a cold start, and memory held twice). Which
 * workers hold what comes from the workers themselves (INSTANCES_CHANNEL);
 * piscina asks `choose` for a worker each time it hands out a task.
 */
import { Piscina } from "piscina";
import { INSTANCES_CHANNEL, type InstanceCount } from "../runtime/types.ts";

// piscina exports its balancer's types only through its options.
type Balancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>["loadBalancer"]>;
type PiscinaWorker = Parameters<Balancer>[1][number];
type PiscinaTask = Parameters<Balancer>[0];

/** What a task tells the balancer: the function it invokes (not sent to the worker). */
export interface AffinityHint {
  fn: string;
}

export function hint(task: object, fn: string): void {
  Object.defineProperty(task, Piscina.queueOptionsSymbol, { value: { fn } satisfies AffinityHint });
}

export class Affinity {
  /** Function name → threads that hold a warm instance of it. */
  readonly #warm = new Map<string, Set<number>>();
  readonly #channel = new BroadcastChannel(INSTANCES_CHANNEL);

  constructor() {
    (this.#channel as unknown as { unref?: () => void }).unref?.();
    this.#channel.onmessage = (event) => {
      const { threadId, fn, count } = (event as MessageEvent<InstanceCount>).data;
      let threads = this.#warm.get(fn);
      if (count > 0) {
        if (!threads) {
          threads = new Set();
          this.#warm.set(fn, threads);
        }
        threads.add(threadId);
      } else if (threads) {
        threads.delete(threadId);
        if (threads.size === 0) this.#warm.delete(fn);
      }
    };
  }

  /** An idle worker holding the task's function warm, else any idle worker, else none (the task waits). */
  readonly choose: Balancer = (task: PiscinaTask, workers: PiscinaWorker[]): PiscinaWorker | null => {
    const fn = ((task as unknown as Record<symbol, unknown>)[Piscina.queueOptionsSymbol] as AffinityHint | null)?.fn;
    const warmOn = fn === undefined ? undefined : this.#warm.get(fn);
    let idle: PiscinaWorker | null = null;
    for (const worker of workers) {
      if (worker.currentUsage > 0 || worker.terminating || worker.destroyed) continue;
      if (warmOn?.has(worker.id)) return worker;
      idle ??= worker;
    }
    return idle;
  };

  close(): void {
    this.#channel.close();
  }
}
