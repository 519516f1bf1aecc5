/**
 * `/fn/:name/*`: any method reaches the function with the rest of the path.
 * Bodies arrive as raw bytes (every content type), bounded by the host's
 * limit and the function's own; the answer carries how the invocation went
 * in `x-joule-*` headers. HTTP only: what an invocation may do, and what it
 * costs, is the invoker's (invoke/invoker.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config.ts";
import { JouleError } from "../../errors.ts";
import type { InvocationOutcome, Invoker } from "../../invoke/invoker.ts";
import type { FunctionRegistry } from "../../runtime/registry.ts";
import type { InvokeStats } from "../../runtime/types.ts";
import { access, functionParam } from "../access.ts";
import { toJouleError } from "../errors.ts";
import type { HostMetrics } from "../metrics.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** What the worker reported, for metrics. */
    invocationStats?: InvokeStats;
    /** The code the request failed with, for metrics. */
    invocationError?: string;
    /** The invoker counted it in the metrics already. */
    invocationCounted?: boolean;
  }
}

export interface InvokeDeps {
  config: Config;
  registry: FunctionRegistry;
  invoker: Invoker;
  metrics: HostMetrics;
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
  const { config, registry, invoker, metrics } = deps;

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
    // The client going away cancels the invocation (and what it waits for upstream).
    const gone = new AbortController();
    const onClose = () => {
      if (!reply.sent) gone.abort();
    };
    request.raw.once("close", onClose);
    let child: FastifyRequest["log"] | undefined;
    let outcome: InvocationOutcome;
    try {
      outcome = await invoker.invoke({
        live,
        request: {
          method: request.method,
          url: `${origin}${guestPath(request.raw.url ?? "/")}`,
          headers: guestHeaders(request),
          body,
        },
        requestId: String(request.id),
        principal: request.principal,
        ip: request.ip,
        signal: gone.signal,
        log: () => (child ??= request.log.child({ function: name, version: live.record.version })),
      });
    } finally {
      request.raw.off("close", onClose);
    }
    request.invocationCounted = true;
    reply.header("x-joule-duration-us", String(outcome.durationUs));
    reply.header("x-joule-energy-uj", String(outcome.energyUj));
    if (outcome.stats) {
      request.invocationStats = outcome.stats;
      reply.header("x-joule-cold-start", String(outcome.stats.coldStart));
      reply.header("x-joule-fuel", String(outcome.stats.fuel));
    }
    if (outcome.error || !outcome.response) throw outcome.error ?? new JouleError("JOULE_ERR_HOST_INTERNAL");
    const { response } = outcome;
    reply.code(response.status);
    const grouped = new Map<string, string[]>();
    for (const [header, value] of response.headers) {
      const values = grouped.get(header);
      if (values) values.push(value);
      else grouped.set(header, [value]);
    }
    for (const [header, values] of grouped) reply.header(header, header === "set-cookie" ? values : values.join(", "));
    const out = response.body;
    return reply.send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }

  // Every answer about a deployed function is counted once: the invoker counts what reached it, this
  // hook what did not (a body the parser refused, a denied key, a full queue, an exhausted budget).
  app.addHook("onError", async (request, _reply, error) => {
    request.invocationError = toJouleError(error, config.dataDir).code;
  });
  app.addHook("onResponse", async (request, reply) => {
    const name = (request.params as { name?: string }).name;
    if (name && !request.invocationCounted && registry.get(name))
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
