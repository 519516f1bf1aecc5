/** What operators and orchestrators poll: liveness, readiness, Prometheus metrics. */
import type { FastifyInstance } from "fastify";
import type { HostMetrics } from "../metrics.ts";

export interface OpsDeps {
  metrics: HostMetrics;
  /** True once stored functions are loaded and the pool runs; false again while closing. */
  isReady: () => boolean;
}

export async function opsRoutes(app: FastifyInstance, { metrics, isReady }: OpsDeps): Promise<void> {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    if (!isReady()) return reply.code(503).send({ status: "starting" });
    return { status: "ready" };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
