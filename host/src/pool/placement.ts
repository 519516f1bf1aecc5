/**
 * Which worker takes an invocation. A worker runs many at once, up to its
 * concurrency; among those with room, one that holds an idle instance of
 * the function wins (no cold start, no second copy of its memory), then
 * the one with the fewest invocations in flight (CPU-bound work shares a
 * thread with whatever else runs there).
 */

export interface WorkerLoad {
  /** Invocations in flight on it. */
  inFlight: number;
  /** Instances of the function it holds, idle and in use (as it last said). */
  warm: number;
  /** Invocations of the function in flight on it. */
  busy: number;
}

/** The index of the worker to use, or -1 when every worker is full. */
export function place(workers: readonly WorkerLoad[], concurrency: number): number {
  let chosen = -1;
  let chosenWarm = false;
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i] as WorkerLoad;
    if (w.inFlight >= concurrency) continue;
    const warm = w.warm > w.busy;
    if (chosen === -1) {
      chosen = i;
      chosenWarm = warm;
      continue;
    }
    const best = workers[chosen] as WorkerLoad;
    if ((warm && !chosenWarm) || (warm === chosenWarm && w.inFlight < best.inFlight)) {
      chosen = i;
      chosenWarm = warm;
    }
  }
  return chosen;
}
