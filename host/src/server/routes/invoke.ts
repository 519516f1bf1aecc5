/**
 * `/fn/:name/*`: any method reaches the function with the rest of the path.
 * Bodies arrive as raw bytes (every content type), bounded by the host's
 * limit and the function's own; the answer carries how the invocation went
 * in `x-joule-*` headers. HTTP only: what an invocation may do, and what it
 * costs, is the invoker's (invoke/invoker.ts).
 */
import type { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config.ts";
import { JouleError } from "../../errors.ts";
import type { InvocationOutcome, Invoker } from "../../invoke/invoker.ts";
import type { FunctionRegistry } from "../../runtime/registry.ts";
import type { InvokeStats } from "../../runtime/types.ts";
import { access, functionParam } from "../access.ts";
import { JOULE_AUTHORIZATION } from "../credentials.ts";
import { toJouleError } from "../errors.ts";
import type { HostMetrics } from "../metrics.ts";
import { takeBody } from "../request-body.ts";
import { StreamedResponse, setHeaders } from "../response-stream.ts";

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

/** The prefix a request came in by: `/fn/<name>` (the name is checked already, so it has no `/` or `?`). */
export function mountOf(rawUrl: string): string {
  const end = rawUrl.slice("/fn/".length).search(/[/?]/);
  return end === -1 ? rawUrl : rawUrl.slice(0, "/fn/".length + end);
}

export async function invokeRoutes(app: FastifyInstance, deps: InvokeDeps): Promise<void> {
  const { config, registry, invoker, metrics } = deps;

  // Every content type, including none, reaches the function as bytes: the request stream is
  // left as it is and read (or streamed to the function) by takeBody, within the function's limit.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

  async function handle(request: FastifyRequest<{ Params: { name: string; "*"?: string } }>, reply: FastifyReply) {
    const { name } = request.params;
    const live = registry.get(name);
    if (!live) {
      throw new JouleError("JOULE_ERR_FUNCTION_NOT_FOUND", `no function named "${name}" is deployed`, {
        function: name,
      });
    }
    const origin = requestOrigin(request);
    // The client going away cancels the invocation (and what it waits for upstream); so does a
    // streamed body that passes the limit.
    const gone = new AbortController();
    let tooLarge = false;
    const limit = live.record.limits.maxBodyBytes ?? config.maxBodyBytes;
    const body = await takeBody(
      request.body as Readable | undefined,
      request.headers["content-length"],
      limit,
      name,
      () => {
        tooLarge = true;
        gone.abort();
      },
    );
    const onClose = () => {
      if (!reply.raw.writableFinished) gone.abort();
    };
    reply.raw.once("close", onClose);
    const streamed = new StreamedResponse(reply);
    let child: FastifyRequest["log"] | undefined;
    let outcome: InvocationOutcome;
    try {
      outcome = await invoker.invoke({
        live,
        request: {
          method: request.method,
          url: `${origin}${request.raw.url ?? "/"}`,
          mount: mountOf(request.raw.url ?? "/"),
          headers: guestHeaders(request),
          body: body.first,
          bodyStreamed: body.streamed,
        },
        requestBody: body.rest,
        sink: streamed,
        requestId: String(request.id),
        principal: request.principal,
        ip: request.ip,
        signal: gone.signal,
        log: () => (child ??= request.log.child({ function: name, version: live.record.version })),
      });
    } finally {
      reply.raw.off("close", onClose);
    }
    request.invocationCounted = true;
    if (outcome.stats) request.invocationStats = outcome.stats;
    if (streamed.started) {
      // Head and body are on their way; the figures follow as trailers, a failure as an abnormal end.
      if (outcome.error)
        request.log.warn({ code: outcome.error.code }, `${outcome.error.message} (after the response started)`);
      streamed.finish(outcome);
      return reply;
    }
    streamed.finish(outcome);
    reply.header("x-joule-duration-us", String(outcome.durationUs));
    reply.header("x-joule-energy-uj", String(outcome.energyUj));
    if (outcome.stats) {
      reply.header("x-joule-cold-start", String(outcome.stats.coldStart));
      reply.header("x-joule-fuel", String(outcome.stats.fuel));
    }
    if (tooLarge) {
      // The rest of the body is not read: the connection ends with this answer.
      reply.header("connection", "close");
      throw new JouleError("JOULE_ERR_BODY_TOO_LARGE", `the body is over the limit; ${name} accepts at most ${limit}`, {
        limit,
      });
    }
    if (outcome.error || !outcome.response) throw outcome.error ?? new JouleError("JOULE_ERR_HOST_INTERNAL");
    const { response } = outcome;
    reply.code(response.status);
    setHeaders(reply, response.headers);
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
