/**
 * wasi:http/outgoing-handler: an outbound request of the guest engine's own
 * `fetch`, under the same grant, address policy and limits as
 * joule:function/outbound-http (outbound-http.ts): the origin must be in
 * `capabilities.outboundHttp`, every address its name resolves to passes
 * the host's address policy, and the connection goes to the address that
 * was checked. `handle` returns at once with a future; the request runs
 * while the guest's event loop goes on (other requests, timers), and the
 * guest waits for it through a pollable (suspending only itself, io.ts).
 *
 * Redirects are not followed here: the guest engine's fetch follows them
 * with a new request each, so every hop is checked again. Every request
 * counts against the invocation's limit. A request the guest drops
 * (an aborted fetch) or that its invocation leaves behind is closed, and
 * the upstream sees the connection go.
 */
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { IoScope } from "../io.ts";
import { urlPort } from "../origin-pattern.ts";
import { checkedAddress, HttpError, type OutboundHttpState, refused } from "../outbound-http.ts";
import { ResponseBodyStream } from "./bodies.ts";
import {
  type ErrorCode,
  FutureIncomingResponse,
  IncomingResponse,
  type OutgoingRequest,
  type RequestOptions,
} from "./requests.ts";

const denied = (): ErrorCode => ({ tag: "HTTP-request-denied" });
const internal = (message: string): ErrorCode => ({ tag: "internal-error", val: message });

function errorCode(error: HttpError): ErrorCode {
  switch (error.tag) {
    case "denied":
      return denied();
    case "timeout":
      return { tag: "connection-timeout" };
    case "too-large":
      return { tag: "HTTP-request-body-size", val: undefined };
    default:
      return internal(error.val);
  }
}

/** The URL the request names, or why it names none. */
function targetUrl(request: OutgoingRequest): URL | ErrorCode {
  const scheme = request.scheme() ?? { tag: "HTTPS" };
  if (scheme.tag === "other") return { tag: "HTTP-protocol-error" };
  const authority = request.authority();
  if (!authority) return { tag: "HTTP-request-URI-invalid" };
  try {
    return new URL(`${scheme.tag === "HTTP" ? "http" : "https"}://${authority}${request.pathWithQuery() ?? "/"}`);
  } catch {
    return { tag: "HTTP-request-URI-invalid" };
  }
}

function methodName(request: OutgoingRequest): string {
  const method = request.method();
  return method.tag === "other" ? (method.val ?? "GET") : method.tag.toUpperCase();
}

/** One request in flight: its connection, closed if the guest or its invocation lets go of it. */
class Call {
  #request: ClientRequest | undefined;
  #message: IncomingMessage | undefined;
  #closed = false;

  attach(request: ClientRequest): void {
    this.#request = request;
    if (this.#closed) request.destroy();
  }

  received(message: IncomingMessage): void {
    this.#message = message;
  }

  close(): void {
    this.#closed = true;
    this.#request?.destroy();
    this.#message?.destroy();
  }
}

export function outgoingHandler(state: OutboundHttpState, scope: IoScope) {
  /** Counts bytes read against the invocation's limit (all its responses together); false once over it. */
  const account = (bytes: number): boolean => {
    state.responseBytesRead += bytes;
    return state.responseBytesRead <= state.limits.responseBytes;
  };

  return function handle(request: OutgoingRequest, _options: RequestOptions | undefined): FutureIncomingResponse {
    if (scope.dead) throw internal("the invocation was cancelled");
    const url = targetUrl(request);
    if (!(url instanceof URL)) throw url;
    if (state.requests >= state.limits.requests) {
      const message = `an invocation makes at most ${state.limits.requests} requests (redirects included)`;
      refused(state, url.href, "too-large", message);
      throw internal(message);
    }
    if (url.username || url.password) throw { tag: "HTTP-request-URI-invalid" };
    state.requests++;
    const call = new Call();
    scope.held.add(call);
    const done = () => scope.held.delete(call);
    const future = new FutureIncomingResponse(scope, () => {
      call.close();
      done();
    });
    const body = request.outgoingBody;
    if (body) body.limit = state.limits.requestBytes;
    void (async () => {
      const target = await checkedAddress(state, url);
      if (target instanceof HttpError) {
        future.settle({ ok: false, error: errorCode(target) });
        done();
        return;
      }
      // Connect to the checked address whatever the name resolves to now.
      const lookup: LookupFunction = (_hostname, options, callback) => {
        if ((options as { all?: boolean }).all) {
          (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [target]);
        } else callback(null, target.address, target.family);
      };
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const headers = request.headers().toNode();
      // node:http does not decompress: ask for the body as it is unless the guest chose.
      headers["accept-encoding"] ??= "identity";
      // A body the guest has finished already goes with its length, not chunked (some servers want one).
      const length = body ? body.complete : 0;
      if (length !== undefined && (length > 0 || !["GET", "HEAD"].includes(methodName(request)))) {
        headers["content-length"] = String(length);
      }
      const outgoing = send({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: urlPort(url),
        path: `${url.pathname}${url.search}`,
        method: methodName(request),
        headers,
        lookup,
        agent: false,
        timeout: state.limits.timeoutMs,
        maxHeaderSize: 64 * 1024,
        ...(scope.signal ? { signal: scope.signal } : {}),
      });
      call.attach(outgoing);
      outgoing.on("timeout", () => {
        outgoing.destroy();
        future.settle({ ok: false, error: { tag: "connection-timeout" } });
        done();
      });
      outgoing.on("error", (error: NodeJS.ErrnoException) => {
        future.settle({
          ok: false,
          error:
            error.code === "ECONNREFUSED"
              ? { tag: "connection-refused" }
              : internal(`${url.origin} could not be reached (${error.code ?? "error"})`),
        });
        done();
      });
      outgoing.on("response", (message: IncomingMessage) => {
        call.received(message);
        outgoing.setTimeout(0);
        // A body announced larger than the invocation may read fails the request now, saying why.
        const announced = Number(message.headers["content-length"] ?? Number.NaN);
        if (announced > state.limits.responseBytes - state.responseBytesRead) {
          const why = `response bodies are at most ${state.limits.responseBytes} bytes`;
          refused(state, url.href, "too-large", why);
          message.destroy();
          future.settle({ ok: false, error: { tag: "HTTP-response-body-size", val: BigInt(announced) } });
          done();
          return;
        }
        const response = new IncomingResponse(message, () => new ResponseBodyStream(scope, message, account, done));
        future.settle({ ok: true, response });
      });
      if (body)
        body.connect(
          (bytes) => outgoing.write(bytes),
          () => outgoing.end(),
        );
      else outgoing.end();
    })().catch((error: unknown) => {
      future.settle({ ok: false, error: internal(String((error as Error)?.message ?? error)) });
      done();
    });
    return future;
  };
}
