/**
 * What operators and orchestrators poll: liveness and readiness (anyone),
 * Prometheus metrics (a key with `metrics:read`, as a Bearer token in the
 * scrape config; or, without a key, on the operator's own listener,
 * JOULE_METRICS_ADDR). Metrics name functions, so a key limited to some
 * functions gets only their series.
 */
import type { FastifyInstance } from "fastify";
import { access, principalOf } from "../access.ts";
import type { HostMetrics } from "../metrics.ts";

export interface OpsDeps {
  metrics: HostMetrics;
  /** Why the host cannot take invocations now ("starting", or the ledger cannot write); undefined when it can. */
  notReady: () => string | undefined;
}

export async function opsRoutes(app: FastifyInstance, { metrics, notReady }: OpsDeps): Promise<void> {
  app.get("/healthz", access("public"), async () => ({ status: "ok" }));

  app.get("/readyz", access("public"), async (_request, reply) => {
    const why = notReady();
    if (why !== undefined) return reply.code(503).send({ status: why });
    return { status: "ready" };
  });

  app.get("/metrics", access("metrics:read"), async (request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.exposition(principalOf(request).functions);
  });
}
