/**
 * `scaling.minInstances`: instances made before any request asks, at
 * deploy and when the host starts. Warm-only tasks are sent at once so
 * they land on different workers (each runs one task at a time); a worker
 * keeps at most one instance per function, so the pool size caps it.
 */
import type { Config } from "../config.ts";
import type { LiveFunction } from "../runtime/registry.ts";
import { NO_REQUEST, taskBase } from "../runtime/task.ts";
import type { Scheduler } from "./scheduler.ts";

export async function prewarm(scheduler: Scheduler, live: LiveFunction, config: Config): Promise<number> {
  const wanted = Math.min(live.record.scaling.minInstances, scheduler.threads);
  if (wanted === 0) return 0;
  const base = taskBase(live, config);
  const timeoutMs = live.record.limits.timeoutMs ?? config.defaultTimeoutMs;
  const results = await Promise.allSettled(
    Array.from({ length: wanted }, (_, i) =>
      scheduler.invoke({ ...base, request: NO_REQUEST, requestId: `prewarm-${i}`, warmOnly: true }, timeoutMs),
    ),
  );
  return results.filter((r) => r.status === "fulfilled" && r.value.ok).length;
}
