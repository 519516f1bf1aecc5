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
import type { Authenticator } from "../auth.ts";
import { toJouleError } from "../errors.ts";
import type { HostMetrics } from "../metrics.ts";

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

/** Request headers the function does not see: hop-by-hop ones and the admin credential. */
const HIDDEN_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "authorization"]);

function guestHeaders(request: FastifyRequest): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < request.raw.rawHeaders.length; i += 2) {
    const name = (request.raw.rawHeaders[i] as string).toLowerCase();
    if (!HIDDEN_HEADERS.has(name)) headers.push([name, request.raw.rawHeaders[i + 1] as string]);
  }
  return headers;
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
    // A public function takes anyone; a private one needs functions:invoke for it. Either way,
    // credentials that were sent must be valid, and they name whose energy budget is charged.
    const action = `invoke ${name}`;
    request.principal = live.record.public
      ? deps.auth.identify(request, action, name)
      : deps.auth.require(request, "functions:invoke", action, name);
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
      return await run(request, reply, live, base, timeoutMs);
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
  ) {
    const { name } = request.params;
    const { fuelLimit } = base;
    const body = (request.body as Buffer | undefined) ?? EMPTY;
    const url = `${request.protocol}://${request.host}${guestPath(request.raw.url ?? "/")}`;
    // Reserve what the invocation could use at most; refused here, nothing runs.
    const reservation = ledger.reserve(name, (request.principal ?? ANONYMOUS).id, microjoules(model, fuelLimit));

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
      const error = JouleError.fromWire(result.error);
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
    request.invocationError = toJouleError(error, config.dataDir).code;
  });
  app.addHook("onResponse", async (request, reply) => {
    const name = (request.params as { name?: string }).name;
    if (name && registry.get(name))
      metrics.record(name, reply.statusCode, request.invocationStats, request.invocationError);
  });

  app.all("/fn/:name", handle);
  app.all("/fn/:name/*", handle);
}
