/**
 * The HTTP face of the host (fastify): ops routes, the admin API and the
 * invocation route, with one error handler that turns every failure into
 * `{ "error": { "code", "message", "details"? } }` from the catalog and
 * never a stack trace or a host path.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest, LogController } from "fastify";
import type { AuditLog } from "../auth/audit.ts";
import type { KeyStore } from "../auth/keys.ts";
import type { SecretStore } from "../capabilities/secrets.ts";
import type { EnergyModel } from "../energy/model.ts";
import { JouleError } from "../errors.ts";
import { checkFunctionName } from "../manifest.ts";
import { faultOf } from "../store/storage-error.ts";
import type { Access } from "./access.ts";
import { toJouleError } from "./errors.ts";
import { type AdminDeps, adminRoutes } from "./routes/admin.ts";
import { auditRoutes } from "./routes/audit.ts";
import { energyRoutes } from "./routes/energy.ts";
import { type InvokeDeps, invokeRoutes } from "./routes/invoke.ts";
import { keysRoutes } from "./routes/keys.ts";
import { opsRoutes } from "./routes/ops.ts";
import { registryRoutes } from "./routes/registry.ts";
import { secretsRoutes } from "./routes/secrets.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** What a request made that has no id in its route (POST /v1/keys: the new key's), for the audit log. */
    auditSubject?: string;
  }
}

export interface AppDeps extends InvokeDeps, AdminDeps {
  model: EnergyModel;
  audit: AuditLog;
  keys: KeyStore;
  secrets: SecretStore;
  notReady: () => string | undefined;
  /** Where the pino log goes; stdout when not given. */
  logStream?: NodeJS.WritableStream | undefined;
}

/** One route and what reaching it takes. */
export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

const routeTables = new WeakMap<FastifyInstance, RouteAccess[]>();

/** Every route of an app built by buildApp, with its access (for the tests that check them all). */
export function routeTable(app: FastifyInstance): readonly RouteAccess[] {
  return routeTables.get(app) ?? [];
}

const MAX_HEADER_BYTES = 16 * 1024;
/** Headers parsed per request; Node ignores the ones past this. */
const MAX_HEADERS = 100;

const ADMIN_SECURITY_HEADERS: Array<[string, string]> = [
  ["x-content-type-options", "nosniff"],
  ["x-frame-options", "DENY"],
  ["content-security-policy", "default-src 'none'; frame-ancestors 'none'"],
  ["cache-control", "no-store"],
  ["referrer-policy", "no-referrer"],
];

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config } = deps;
  const app = Fastify({
    logger: deps.logStream ? { level: config.logLevel, stream: deps.logStream } : { level: config.logLevel },
    genReqId: () => randomUUID(),
    logController: new LogController({ requestIdLogLabel: "requestId" }),
    bodyLimit: config.maxBodyBytes,
    routerOptions: { maxParamLength: 200 },
    // Request-line plus headers at most 16 KiB (Node answers 431 past it); a whole request at most
    // two minutes to arrive; idle keep-alive connections closed after five seconds.
    http: { maxHeaderSize: MAX_HEADER_BYTES },
    requestTimeout: 120_000,
    keepAliveTimeout: 5_000,
    return503OnClosing: true,
  });

  app.server.maxHeadersCount = MAX_HEADERS;

  app.addHook("onSend", async (request, reply) => {
    reply.header("x-joule-request-id", request.id);
    // The admin API's answers are data for programs: never sniffed, framed, cached or referred.
    if (request.url.startsWith("/v1/") || request.url.startsWith("/v2/")) {
      for (const [name, value] of ADMIN_SECURITY_HEADERS) reply.header(name, value);
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const joule = toJouleError(error, config.dataDir);
    if (joule.code === "JOULE_ERR_HOST_INTERNAL") request.log.error({ err: error }, "unhandled error");
    else request.log.info({ code: joule.code }, joule.message);
    // A file system fault that reached here uncoded (the stores report their own).
    const fault = error instanceof JouleError ? undefined : faultOf(joule);
    if (fault) deps.storage.failed("functions", fault);
    return reply.code(joule.status).send({ error: joule.toWire() });
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new JouleError(
      "JOULE_ERR_ROUTE_NOT_FOUND",
      `no route for ${request.method} ${request.url.split("?")[0]}`,
    );
    return reply.code(error.status).send({ error: error.toWire() });
  });

  // Every route says who may reach it (access.ts): one that does not is refused here, at start.
  const table: RouteAccess[] = [];
  routeTables.set(app, table);
  app.addHook("onRoute", (route) => {
    const rule = route.config?.access;
    if (!rule) throw new Error(`${route.method} ${route.url} declares no access`);
    for (const method of [route.method].flat()) table.push({ method, url: route.url, access: rule });
  });

  const describeRequest = (request: FastifyRequest) => {
    const params = request.params as Record<string, string | undefined>;
    const named = request.routeOptions.config.access?.action?.(request);
    if (named !== undefined) return { action: named, fn: params.name ?? null };
    const route = request.routeOptions.url ?? request.url;
    // A function's name has a column of its own; other ids (a key's, an energy budget's) are
    // written into the action: DELETE /v1/keys/<id>, PUT /v1/energy/principals/<id>.
    const action = params.name === undefined ? route.replace(/:(\w+)/g, (p, k: string) => params[k] ?? p) : route;
    const made = request.auditSubject === undefined ? "" : ` (made ${request.auditSubject})`;
    return { action: `${request.method} ${action}${made}`, fn: params.name ?? null };
  };

  app.addHook("onRequest", async (request) => {
    const rule = request.routeOptions.config.access;
    if (!rule) return; // no such route: the not-found handler answers
    // A name from the URL passes the manifest's rule before anything uses it.
    const { name } = request.params as { name?: string };
    if (name !== undefined) checkFunctionName(name);
    if (rule.scope === "public") return;
    const { action } = describeRequest(request);
    if (rule.anonymous?.(request)) {
      // Credentials stay optional, but ones that were sent must be valid: they say who pays. The
      // Authorization header is the function's own here, never read as Joule's (credentials.ts).
      request.principal = deps.auth.identify(request, action, name ?? null, false);
      return;
    }
    deps.auth.require(request, rule.scope, action, rule.resource?.(request));
  });

  // Every change made through the admin API is audited, allowed or not (denials are audited where
  // they are refused); reads and invocations are not.
  app.addHook("onResponse", async (request, reply) => {
    const rule = request.routeOptions.config.access;
    if (!rule || rule.scope === "public" || rule.anonymous || request.method === "GET" || request.method === "HEAD")
      return;
    const { action, fn } = describeRequest(request);
    deps.auth.recordOperation(request, reply, action, fn);
  });

  app.register(opsRoutes, { metrics: deps.metrics, notReady: deps.notReady, storage: deps.storage });
  app.register(async (area) => adminRoutes(area, deps));
  app.register(async (area) => energyRoutes(area, deps));
  app.register(async (area) => auditRoutes(area, deps));
  app.register(async (area) => keysRoutes(area, deps));
  app.register(async (area) => secretsRoutes(area, deps));
  app.register(async (scope) => registryRoutes(scope, deps));
  app.register(async (scope) => invokeRoutes(scope, deps));
  return app;
}
