/**
 * The HTTP face of the host (fastify): ops routes, the admin API and the
 * invocation route, with one error handler that turns every failure into
 * `{ "error": { "code", "message", "details"? } }` from the catalog and
 * never a stack trace or a host path.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, LogController } from "fastify";
import { JouleError } from "../errors.ts";
import { type AdminDeps, adminRoutes } from "./routes/admin.ts";
import { energyRoutes } from "./routes/energy.ts";
import { type InvokeDeps, invokeRoutes } from "./routes/invoke.ts";
import { opsRoutes } from "./routes/ops.ts";

export interface AppDeps extends InvokeDeps, AdminDeps {
  isReady: () => boolean;
  /** Where the pino log goes; stdout when not given. */
  logStream?: NodeJS.WritableStream | undefined;
}

function toJouleError(error: FastifyError): JouleError {
  if (error instanceof JouleError) return error;
  const status = error.statusCode ?? 500;
  if (status === 413 || error.code === "FST_ERR_CTP_BODY_TOO_LARGE" || error.code === "FST_REQ_FILE_TOO_LARGE") {
    return new JouleError("JOULE_ERR_BODY_TOO_LARGE", `the request body is over the limit: ${error.message}`);
  }
  if (status >= 400 && status < 500) return new JouleError("JOULE_ERR_REQUEST_INVALID", error.message);
  return new JouleError(
    "JOULE_ERR_HOST_INTERNAL",
    "internal error; the host log has the details under this request id",
  );
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config } = deps;
  const app = Fastify({
    logger: deps.logStream ? { level: config.logLevel, stream: deps.logStream } : { level: config.logLevel },
    genReqId: () => randomUUID(),
    logController: new LogController({ requestIdLogLabel: "requestId" }),
    bodyLimit: config.maxBodyBytes,
    routerOptions: { maxParamLength: 200 },
    requestTimeout: 120_000,
    return503OnClosing: true,
  });

  app.addHook("onSend", async (request, reply) => {
    reply.header("x-joule-request-id", request.id);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const joule = toJouleError(error);
    if (joule.code === "JOULE_ERR_HOST_INTERNAL") request.log.error({ err: error }, "unhandled error");
    else request.log.info({ code: joule.code }, joule.message);
    return reply.code(joule.status).send({ error: joule.toWire() });
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new JouleError(
      "JOULE_ERR_ROUTE_NOT_FOUND",
      `no route for ${request.method} ${request.url.split("?")[0]}`,
    );
    return reply.code(error.status).send({ error: error.toWire() });
  });

  app.register(opsRoutes, { metrics: deps.metrics, isReady: deps.isReady });

  app.register(async (admin) => {
    const token = config.adminToken;
    if (token) {
      const expected = digest(`Bearer ${token}`);
      admin.addHook("onRequest", async (request) => {
        const given = digest(request.headers.authorization ?? "");
        if (!timingSafeEqual(given, expected)) {
          throw new JouleError(
            "JOULE_ERR_REQUEST_UNAUTHORIZED",
            "send the admin token as `Authorization: Bearer <token>`",
          );
        }
      });
    }
    await adminRoutes(admin, deps);
    await energyRoutes(admin, deps);
  });

  app.register(async (scope) => invokeRoutes(scope, deps));
  return app;
}
