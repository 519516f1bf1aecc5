/**
 * Per-function concurrency: at most `maxInstances` invocations of a
 * function run at once; up to `maxQueue` more wait, first come first
 * served; past that the request is refused with JOULE_ERR_CAPACITY rather
 * than queued without bound.
 */
import { JouleError } from "../errors.ts";

interface Lane {
  running: number;
  waiting: Array<() => void>;
}

export class CapacityGate {
  readonly #lanes = new Map<string, Lane>();

  /** Waits for a slot; the returned function gives it back (call it exactly once). */
  async acquire(fn: string, maxInstances: number | undefined, maxQueue: number): Promise<() => void> {
    if (maxInstances === undefined) return () => {};
    let lane = this.#lanes.get(fn);
    if (!lane) {
      lane = { running: 0, waiting: [] };
      this.#lanes.set(fn, lane);
    }
    if (lane.running >= maxInstances) {
      if (lane.waiting.length >= maxQueue) {
        throw new JouleError(
          "JOULE_ERR_CAPACITY",
          `${fn} is at its capacity: ${maxInstances} running and ${lane.waiting.length} waiting (scaling.maxInstances, scaling.maxQueue)`,
          { maxInstances, maxQueue },
        );
      }
      await new Promise<void>((resolve) => lane.waiting.push(resolve));
    } else {
      lane.running++;
    }
    return () => {
      const next = lane.waiting.shift();
      if (next)
        next(); // the slot passes straight to the next waiter
      else if (--lane.running === 0) this.#lanes.delete(fn);
    };
  }

  waiting(fn: string): number {
    return this.#lanes.get(fn)?.waiting.length ?? 0;
  }
}
