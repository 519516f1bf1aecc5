/**
 * `scaling.minInstances`: instances made before any request asks, at
 * deploy and when the host starts. Warm-only tasks are sent at once, so
 * they spread over the workers (placement prefers the one with the fewest
 * in flight) and each makes an instance of its own; workers keep them warm
 * whatever the idle timeout.
 */
import type { Config } from "../config.ts";
import type { LiveFunction } from "../runtime/registry.ts";
import { NO_REQUEST, taskBase } from "../runtime/task.ts";
import type { WorkerPool } from "./worker-pool.ts";

export async function prewarm(pool: WorkerPool, live: LiveFunction, config: Config): Promise<number> {
  const wanted = live.record.scaling.minInstances;
  if (wanted === 0) return 0;
  const base = taskBase(live, config);
  const results = await Promise.allSettled(
    Array.from({ length: wanted }, (_, i) =>
      pool.invoke({ ...base, request: NO_REQUEST, requestId: `prewarm-${i}`, warmOnly: true }),
    ),
  );
  return results.filter((r) => r.status === "fulfilled" && r.value.ok).length;
}
