/**
 * `/fn/:name/*`: any method reaches the function with the rest of the path.
 * Bodies arrive as raw bytes (every content type), bounded by the host's
 * limit and the function's own; the answer carries how the invocation went
 * in `x-joule-*` headers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuditLog } from "../../auth/audit.ts";
import { ANONYMOUS } from "../../auth/keys.ts";
import type { Config } from "../../config.ts";
import type { EnergyLedger } from "../../energy/ledger.ts";
import { type EnergyModel, microjoules } from "../../energy/model.ts";
import { JouleError } from "../../errors.ts";
import { CapacityGate } from "../../pool/capacity.ts";
import type { Scheduler } from "../../pool/scheduler.ts";
import type { FunctionRegistry, LiveFunction } from "../../runtime/registry.ts";
import { type TaskBase, taskBase } from "../../runtime/task.ts";
import type { InvokeStats } from "../../runtime/types.ts";
import { access, functionParam } from "../access.ts";
import type { Authenticator } from "../auth.ts";
import { JOULE_AUTHORIZATION } from "../credentials.ts";
import { toJouleError } from "../errors.ts";
import type { HostMetrics } from "../metrics.ts";
import { unsettled } from "../unsettled.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** What the worker reported, for metrics. */
    invocationStats?: InvokeStats;
    /** The code the request failed with, for metrics. */
    invocationError?: string;
  }
}

export interface InvokeDeps {
  config: Config;
  registry: FunctionRegistry;
  scheduler: Scheduler;
  metrics: HostMetrics;
  ledger: EnergyLedger;
  model: EnergyModel;
  auth: Authenticator;
  audit: AuditLog;
}

const EMPTY = new Uint8Array(0);

/** Request headers the function does not see: hop-by-hop ones and Joule's own credential header. */
const HIDDEN_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", JOULE_AUTHORIZATION]);

function guestHeaders(request: FastifyRequest): Array<[string, string]> {
  // Authorization is the function's, unless Joule took the caller's key from it (credentials.ts).
  const consumed = request.credentialHeader;
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < request.raw.rawHeaders.length; i += 2) {
    const name = (request.raw.rawHeaders[i] as string).toLowerCase();
    if (!HIDDEN_HEADERS.has(name) && name !== consumed) headers.push([name, request.raw.rawHeaders[i + 1] as string]);
  }
  return headers;
}

/**
 * `scheme://host[:port]` of the request, from its Host header. A request
 * without a Host, or with one that is not a plain authority, is the
 * caller's mistake: refused here, before anything is reserved or run,
 * instead of failing inside the function when it parses its URL.
 */
function requestOrigin(request: FastifyRequest): string {
  const host = request.host;
  const origin = `${request.protocol}://${host}`;
  let parsed: URL | undefined;
  try {
    if (host && !/[\s/?#@\\]/.test(host)) parsed = new URL(origin);
  } catch {}
  if (parsed?.pathname !== "/") {
    throw new JouleError(
      "JOULE_ERR_REQUEST_INVALID",
      "the request has no valid Host header; send `Host: <name>[:<port>]` (HTTP/1.1 requires it)",
    );
  }
  return origin;
}

/**
 * The path and query the function sees: what follows `/fn/<name>` in the
 * request line, as sent. Taken from the raw URL because the router's
 * wildcard is already percent-decoded (`a%3Fb` must not become a query).
 */
export function guestPath(rawUrl: string): string {
  const queryAt = rawUrl.indexOf("?");
  const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
  const query = queryAt === -1 ? "" : rawUrl.slice(queryAt);
  const restAt = path.indexOf("/", "/fn/".length);
  return `${restAt === -1 ? "/" : path.slice(restAt)}${query}`;
}

export async function invokeRoutes(app: FastifyInstance, deps: InvokeDeps): Promise<void> {
  const { config, registry, scheduler, metrics, ledger, model } = deps;
  const gate = new CapacityGate();

  // Every content type, including none, reaches the function as bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: config.maxBodyBytes }, (_req, body, done) => {
    done(null, body);
  });

  async function handle(request: FastifyRequest<{ Params: { name: string; "*"?: string } }>, reply: FastifyReply) {
    const { name } = request.params;
    const live = registry.get(name);
    if (!live) {
      throw new JouleError("JOULE_ERR_FUNCTION_NOT_FOUND", `no function named "${name}" is deployed`, {
        function: name,
      });
    }
    const origin = requestOrigin(request);
    const body = (request.body as Buffer | undefined) ?? EMPTY;
    const limit = live.record.limits.maxBodyBytes ?? config.maxBodyBytes;
    if (body.byteLength > limit) {
      throw new JouleError(
        "JOULE_ERR_BODY_TOO_LARGE",
        `the body is ${body.byteLength} bytes; ${name} accepts at most ${limit}`,
        {
          limit,
        },
      );
    }
    const timeoutMs = live.record.limits.timeoutMs ?? config.defaultTimeoutMs;
    const base = taskBase(live, config);
    const { maxInstances, maxQueue } = live.record.scaling;
    const release = await gate.acquire(name, maxInstances, maxQueue);
    try {
      return await run(request, reply, live, base, timeoutMs, origin);
    } finally {
      release();
    }
  }

  async function run(
    request: FastifyRequest<{ Params: { name: string; "*"?: string } }>,
    reply: FastifyReply,
    live: LiveFunction,
    base: TaskBase,
    timeoutMs: number,
    origin: string,
  ) {
    const { name } = request.params;
    const { fuelLimit } = base;
    const body = (request.body as Buffer | undefined) ?? EMPTY;
    const url = `${origin}${guestPath(request.raw.url ?? "/")}`;
    // Reserve what the invocation could use at most; refused here, nothing runs. The caller's key
    // pays; an anonymous call of a public function is paid by whoever deployed it.
    const payer = request.principal?.id ?? live.record.owner ?? ANONYMOUS.id;
    const reservation = ledger.reserve(name, payer, microjoules(model, fuelLimit));

    let result: Awaited<ReturnType<Scheduler["invoke"]>>;
    const dispatched = performance.now();
    try {
      result = await scheduler.invoke(
        {
          ...base,
          request: { method: request.method, url, headers: guestHeaders(request), body },
          requestId: String(request.id),
        },
        timeoutMs,
      );
    } catch (error) {
      // No figures came back (the worker was stopped): charge what was reserved.
      ledger.settle(reservation, {
        microjoules: reservation.microjoules,
        fuel: fuelLimit,
        requestId: String(request.id),
      });
      reply.header("x-joule-energy-uj", String(reservation.microjoules));
      // Time from dispatch, queueing included: the worker that could have said was stopped.
      reply.header("x-joule-duration-us", String(Math.round((performance.now() - dispatched) * 1000)));
      throw error;
    }

    // A child logger costs more than a tiny function's whole call: made only when there is something to say.
    let child: FastifyRequest["log"] | undefined;
    const log = () => (child ??= request.log.child({ function: name, version: live.record.version }));
    for (const line of result.logs) {
      const level = line.stream === "stderr" || line.stream === "error" || line.stream === "warn" ? "warn" : "info";
      log()[level]({ guest: line.stream }, line.message);
    }
    for (const denial of result.denials) {
      deps.audit.recordDenial(denial, {
        principal: (request.principal ?? ANONYMOUS).id,
        function: name,
        requestId: String(request.id),
        ip: request.ip,
      });
    }
    if (result.droppedLogs > 0)
      log().warn({ dropped: result.droppedLogs }, "guest log lines dropped: over the per-invocation limit");

    request.invocationStats = result.stats;
    reply.header("x-joule-duration-us", String(result.stats.durationUs));
    reply.header("x-joule-cold-start", String(result.stats.coldStart));
    reply.header("x-joule-fuel", String(result.stats.fuel));
    const energy = microjoules(model, result.stats.fuel);
    ledger.settle(reservation, { microjoules: energy, fuel: result.stats.fuel, requestId: String(request.id) });
    reply.header("x-joule-energy-uj", String(energy));
    if (!result.ok) {
      const error = unsettled(JouleError.fromWire(result.error), result.logs);
      log().warn({ code: error.code }, error.message);
      throw error;
    }
    reply.code(result.response.status);
    const grouped = new Map<string, string[]>();
    for (const [header, value] of result.response.headers) {
      const values = grouped.get(header);
      if (values) values.push(value);
      else grouped.set(header, [value]);
    }
    for (const [header, values] of grouped) reply.header(header, header === "set-cookie" ? values : values.join(", "));
    const out = result.response.body;
    return reply.send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }

  // Every answer about a deployed function is counted once, whatever path it took: a body the
  // parser refused, a denied key, a full queue, an exhausted budget, a guest's error or success.
  app.addHook("onError", async (request, _reply, error) => {
    request.invocationError = toJouleError(error).code;
  });
  app.addHook("onResponse", async (request, reply) => {
    const name = (request.params as { name?: string }).name;
    if (name && registry.get(name))
      metrics.record(name, reply.statusCode, request.invocationStats, request.invocationError);
  });

  // A private function needs functions:invoke for it; a public one takes anyone (access.ts).
  const options = access("functions:invoke", {
    resource: functionParam,
    anonymous: (request) => registry.get((request.params as { name: string }).name)?.record.public === true,
    action: (request) => `invoke ${(request.params as { name: string }).name}`,
  });
  app.all("/fn/:name", options, handle);
  app.all("/fn/:name/*", options, handle);
}
