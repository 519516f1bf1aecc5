/**
 * What operators and orchestrators poll: liveness and readiness (anyone),
 * Prometheus metrics (a key with `metrics:read`, as a Bearer token in the
 * scrape config; or, without a key, on the operator's own listener,
 * JOULE_METRICS_ADDR). Metrics name functions, so a key limited to some
 * functions gets only their series. /readyz answers 503 only when
 * invocations cannot be served; a part of the data dir that fails while they
 * still can (a full disk refuses deploys and kv writes, not invocations) is
 * named in its body, with 200:
 * `{"status":"ready","storage":{"auth.db":"full since <time>: <cause>"}}`.
 */
import type { FastifyInstance } from "fastify";
import type { StorageHealth } from "../../store/storage-health.ts";
import { access, principalOf } from "../access.ts";
import type { HostMetrics } from "../metrics.ts";

export interface OpsDeps {
  metrics: HostMetrics;
  /** Why the host cannot take invocations now ("starting", or the ledger cannot write); undefined when it can. */
  notReady: () => string | undefined;
  storage: StorageHealth;
}

export async function opsRoutes(app: FastifyInstance, { metrics, notReady, storage }: OpsDeps): Promise<void> {
  app.get("/healthz", access("public"), async () => ({ status: "ok" }));

  app.get("/readyz", access("public"), async (_request, reply) => {
    const why = notReady();
    const failing = storage.readiness();
    const body = Object.keys(failing).length > 0 ? { storage: failing } : {};
    if (why !== undefined) return reply.code(503).send({ status: why, ...body });
    return { status: "ready", ...body };
  });

  app.get("/metrics", access("metrics:read"), async (request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.exposition(principalOf(request).functions);
  });
}
