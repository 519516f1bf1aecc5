/** What operators and orchestrators poll: liveness, readiness, Prometheus metrics. */
import type { FastifyInstance } from "fastify";
import type { HostMetrics } from "../metrics.ts";

export interface OpsDeps {
  metrics: HostMetrics;
  /** Why the host cannot take invocations now ("starting", or the ledger cannot write); undefined when it can. */
  notReady: () => string | undefined;
}

export async function opsRoutes(app: FastifyInstance, { metrics, notReady }: OpsDeps): Promise<void> {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const why = notReady();
    if (why !== undefined) return reply.code(503).send({ status: why });
    return { status: "ready" };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
