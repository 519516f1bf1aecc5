/**
 * What operators and orchestrators poll: liveness, readiness, Prometheus
 * metrics. /readyz answers 503 only when invocations cannot be served; a
 * part of the data dir that fails while they still can (a full disk refuses
 * deploys and kv writes, not invocations) is named in its body, with 200:
 * `{"status":"ready","storage":{"auth.db":"full since <time>: <cause>"}}`.
 */
import type { FastifyInstance } from "fastify";
import type { StorageHealth } from "../../store/storage-health.ts";
import type { HostMetrics } from "../metrics.ts";

export interface OpsDeps {
  metrics: HostMetrics;
  /** Why the host cannot take invocations now ("starting", or the ledger cannot write); undefined when it can. */
  notReady: () => string | undefined;
  storage: StorageHealth;
}

export async function opsRoutes(app: FastifyInstance, { metrics, notReady, storage }: OpsDeps): Promise<void> {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const why = notReady();
    const failing = storage.readiness();
    const body = Object.keys(failing).length > 0 ? { storage: failing } : {};
    if (why !== undefined) return reply.code(503).send({ status: why, ...body });
    return { status: "ready", ...body };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
