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

/**
 * What a task tells the balancer (not sent to the worker): the function it
 * invokes, and what to do once a worker is chosen, just before piscina posts
 * the task to it.
 */
export interface AffinityHint {
  fn: string;
  chosen?: (worker: number) => void;
}

export function hint(task: object, value: AffinityHint): void {
  Object.defineProperty(task, Piscina.queueOptionsSymbol, { value });
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
    const given = (task as unknown as Record<symbol, unknown>)[Piscina.queueOptionsSymbol] as AffinityHint | null;
    const warmOn = given ? this.#warm.get(given.fn) : undefined;
    let chosen: PiscinaWorker | null = null;
    for (const worker of workers) {
      if (worker.currentUsage > 0 || worker.terminating || worker.destroyed) continue;
      if (warmOn?.has(worker.id)) {
        chosen = worker;
        break;
      }
      chosen ??= worker;
    }
    if (chosen) given?.chosen?.(chosen.id);
    return chosen;
  };

  close(): void {
    this.#channel.close();
  }
}
