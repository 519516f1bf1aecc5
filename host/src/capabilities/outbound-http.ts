/**
 * joule:function/outbound-http: the guest's `fetch`, to the origins its
 * grant lists (`capabilities.outboundHttp`, see origin-pattern.ts) and
 * nowhere else. Deny by default: an empty grant reaches nothing.
 *
 * Every hop is checked the same way: the URL's origin against the grant,
 * then every address its name resolves to against the host's one address
 * policy, net/net-policy.ts (a name that resolves into a private, loopback,
 * link-local or metadata range is refused; only a grant naming the address
 * itself opens such an address).
 * The connection then goes to the address that was checked (a fixed
 * `lookup` for node:http), so a DNS answer that changes between the check
 * and the connect (rebinding) cannot reach another address. Redirects are
 * followed here, at most MAX_REDIRECTS, each hop checked again, with
 * credentials dropped when the origin changes.
 *
 * Limits, per invocation, by default (a function sets its own in
 * `limits.outbound`, within the manifest's bounds): MAX_REQUESTS requests
 * (every redirect hop counts), request bodies MAX_REQUEST_BYTES, response
 * bodies MAX_RESPONSE_BYTES, REQUEST_TIMEOUT_MS per request including its
 * redirects (the invocation's own timeout still bounds the whole call).
 * Each request gets its own
 * connection (no agent, no pool, no cookie jar): nothing one function sends
 * or receives can reach another.
 *
 * The import is asynchronous: with JSPI (transpile-worker.ts) the guest's
 * call suspends its Wasm stack while the host awaits the answer, and
 * suspended time uses no fuel.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import {
  type CheckedDestination,
  checkDestination,
  type Exemption,
  isAddressLiteral,
  type Resolve,
} from "../net/net-policy.ts";
import { resolver } from "../net/resolver.ts";
import type { IoScope } from "./io.ts";
import type { Denial } from "./kv.ts";
import { matchesOrigin, type OriginPattern, parseOriginPattern, urlPort } from "./origin-pattern.ts";

export const MAX_REQUESTS = 32;
export const MAX_REDIRECTS = 5;
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
export const REQUEST_TIMEOUT_MS = 10_000;
const MAX_DENIALS_PER_INVOCATION = 10;

/** Request headers the host sets itself or that would let the guest steer the connection. */
export const HOP_HEADERS = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "expect",
]);
/** Dropped when a redirect leaves the origin they were meant for. */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie"]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A deploy-time check of a grant: the message of the first bad entry, or nothing. */
export function validateOutboundHttp(grant: readonly string[]): string | undefined {
  for (const entry of grant) {
    try {
      parseOriginPattern(entry);
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
}

/** A function's `limits.outbound`, with the defaults filled in. */
export interface OutboundLimits {
  requests: number;
  requestBytes: number;
  responseBytes: number;
  timeoutMs: number;
}

export function outboundLimits(given: Partial<OutboundLimits> = {}): OutboundLimits {
  return {
    requests: given.requests ?? MAX_REQUESTS,
    requestBytes: given.requestBytes ?? MAX_REQUEST_BYTES,
    responseBytes: given.responseBytes ?? MAX_RESPONSE_BYTES,
    timeoutMs: given.timeoutMs ?? REQUEST_TIMEOUT_MS,
  };
}

export interface OutboundHttpGrant {
  origins: readonly string[];
  /** Absent: the defaults. */
  limits?: OutboundLimits;
  /** DNS servers to resolve with (config.dnsServers); the system resolver when absent. */
  dnsServers?: readonly string[];
}

/** Per instance: the parsed grant, and the count of requests of the current invocation. */
export interface OutboundHttpState {
  patterns: OriginPattern[];
  limits: OutboundLimits;
  resolve: Resolve;
  requests: number;
  /** Response bytes read by the current invocation (wasi-http/, which streams). */
  responseBytesRead: number;
  /** Why requests of the current invocation were refused, by origin (what `host.outbound-refusal` answers). */
  refusals: Map<string, [kind: string, message: string]>;
  denials: Denial[];
}

export function prepareOutboundHttp(grant: OutboundHttpGrant, denials: Denial[]): OutboundHttpState {
  return {
    patterns: grant.origins.map(parseOriginPattern),
    limits: grant.limits ?? outboundLimits(),
    resolve: resolver(grant.dnsServers),
    requests: 0,
    responseBytesRead: 0,
    refusals: new Map(),
    denials,
  };
}

/** Called at the start of each invocation. */
export function resetOutboundHttp(state: OutboundHttpState): void {
  state.requests = 0;
  state.responseBytesRead = 0;
  state.refusals.clear();
}

interface OutgoingRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
  followRedirects: boolean;
}

interface IncomingResponse {
  status: number;
  url: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
  redirected: boolean;
}

/** A WIT `http-error` (jco maps a thrown `{ tag, val }` to the `err` case). */
export class HttpError {
  readonly tag: "denied" | "too-large" | "timeout" | "failed";
  readonly val: string;
  constructor(tag: HttpError["tag"], val: string) {
    this.tag = tag;
    this.val = val;
  }
}

export function deny(state: OutboundHttpState, resource: string, why: string): HttpError {
  if (state.denials.length < MAX_DENIALS_PER_INVOCATION) {
    state.denials.push({ capability: "outboundHttp", operation: "fetch", resource, reason: why });
  }
  const message = `JOULE_ERR_CAPABILITY_DENIED: outboundHttp ${resource}: ${why}`;
  refused(state, resource, "denied", message);
  return new HttpError("denied", message);
}

/** An origin as refusals are kept: the URL's origin, or its scheme when it has none (file:). */
function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : parsed.protocol;
  } catch {
    return undefined;
  }
}

/** Notes why a request to `origin` was refused, for `host.outbound-refusal` (a bounded number per invocation). */
export function refused(state: OutboundHttpState, originOrUrl: string, kind: string, message: string): void {
  const origin = originOf(originOrUrl) ?? originOrUrl;
  if (state.refusals.size < MAX_DENIALS_PER_INVOCATION || state.refusals.has(origin)) {
    state.refusals.set(origin, [kind, message]);
  }
}

/** Why this invocation's last request to `url`'s origin was refused, if it was. */
export function outboundRefusal(state: OutboundHttpState, url: string): [string, string] | undefined {
  const origin = originOf(url);
  return origin === undefined ? undefined : state.refusals.get(origin);
}

/** Resolves and checks the URL's host; the address to connect to, or a denial. */
export async function checkedAddress(
  state: OutboundHttpState,
  url: URL,
): Promise<{ address: string; family: 4 | 6 } | HttpError> {
  const origin = url.origin;
  if (!state.patterns.some((pattern) => matchesOrigin(pattern, url))) {
    return deny(state, origin, "not in capabilities.outboundHttp");
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let checked: CheckedDestination;
  try {
    checked = await checkDestination({ hostname: host, port: urlPort(url) }, state.resolve, namedByGrant);
  } catch {
    return new HttpError("failed", `${host} could not be resolved`);
  }
  if (!checked.allowed) {
    return deny(
      state,
      origin,
      `${host} resolves to ${checked.address}, a ${checked.kind} address; only a grant naming the address itself may reach it`,
    );
  }
  return { address: checked.address, family: checked.family };
}

/**
 * The origin already matched the grant, so an address literal in the URL is
 * one the grant names: that is the explicit allow, special ranges included.
 * A name never opens a special range.
 */
const namedByGrant: Exemption = (_kind, destination) => isAddressLiteral(destination.hostname);

function requestHeaders(headers: Array<[string, string]>, bodyLength: number): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    if (HOP_HEADERS.has(name)) continue;
    const previous = out[name];
    if (previous === undefined) out[name] = value;
    else out[name] = Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  // node:http does not decompress: ask for the body as it is unless the guest chose.
  out["accept-encoding"] ??= "identity";
  if (bodyLength > 0) out["content-length"] = String(bodyLength);
  return out;
}

/** One request to the address already checked; the answer with its body read up to the limit. */
function exchange(
  url: URL,
  target: { address: string; family: 4 | 6 },
  method: string,
  headers: OutgoingHttpHeaders,
  body: Uint8Array,
  signal: AbortSignal,
  maxResponseBytes: number,
): Promise<{ status: number; headers: Array<[string, string]>; body: Uint8Array }> {
  // Connect to the checked address whatever the name resolves to now.
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [target]);
    } else callback(null, target.address, target.family);
  };
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = send(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: urlPort(url),
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        lookup,
        agent: false,
        signal,
        maxHeaderSize: 64 * 1024,
      },
      (incoming: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        incoming.on("data", (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > maxResponseBytes) {
            incoming.destroy();
            reject(new HttpError("too-large", `response bodies are at most ${maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        incoming.on("end", () => {
          const pairs: Array<[string, string]> = [];
          for (let i = 0; i + 1 < incoming.rawHeaders.length; i += 2) {
            pairs.push([(incoming.rawHeaders[i] as string).toLowerCase(), incoming.rawHeaders[i + 1] as string]);
          }
          resolve({ status: incoming.statusCode ?? 502, headers: pairs, body: new Uint8Array(Buffer.concat(chunks)) });
        });
        incoming.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(body.byteLength > 0 ? body : undefined);
  });
}

async function send(
  state: OutboundHttpState,
  req: OutgoingRequest,
  invocation: AbortSignal | undefined,
): Promise<IncomingResponse> {
  const { limits } = state;
  if (req.body.byteLength > limits.requestBytes) {
    throw new HttpError("too-large", `request bodies are at most ${limits.requestBytes} bytes`);
  }
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new HttpError("failed", `"${req.url}" is not an absolute URL`);
  }
  let method = req.method.toUpperCase();
  let body = req.body;
  let headers = req.headers;
  const deadline = AbortSignal.timeout(limits.timeoutMs);
  // The invocation ending (its deadline, its client gone) closes the connection too.
  const signal = invocation ? AbortSignal.any([deadline, invocation]) : deadline;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw deny(state, url.protocol, "only http and https requests can be granted");
    }
    if (url.username || url.password) {
      throw new HttpError("failed", "credentials in URLs are not sent; use an Authorization header");
    }
    if (state.requests >= limits.requests) {
      throw new HttpError("too-large", `an invocation makes at most ${limits.requests} requests (redirects included)`);
    }
    state.requests++;
    const target = await checkedAddress(state, url);
    if (target instanceof HttpError) throw target;
    let answer: Awaited<ReturnType<typeof exchange>>;
    try {
      answer = await exchange(
        url,
        target,
        method,
        requestHeaders(headers, body.byteLength),
        body,
        signal,
        limits.responseBytes,
      );
    } catch (error) {
      if (error instanceof HttpError) throw error;
      if (deadline.aborted) throw new HttpError("timeout", `no answer within ${limits.timeoutMs} ms`);
      if (signal.aborted) throw new HttpError("failed", "the invocation was cancelled");
      throw new HttpError(
        "failed",
        `${url.origin} could not be reached (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    const location = answer.headers.find(([name]) => name === "location")?.[1];
    if (!req.followRedirects || !REDIRECTS.has(answer.status) || location === undefined) {
      return { ...answer, url: url.href, redirected: hop > 0 };
    }
    if (hop >= MAX_REDIRECTS) throw new HttpError("failed", `more than ${MAX_REDIRECTS} redirects`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new HttpError("failed", `the redirect to "${location}" is not a valid URL`);
    }
    if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && method === "POST")) {
      method = method === "HEAD" ? "HEAD" : "GET";
      body = new Uint8Array();
      headers = headers.filter(([name]) => !/^content-/i.test(name));
    }
    if (next.origin !== url.origin) headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
    url = next;
  }
}

export function outboundHttpImports(state: OutboundHttpState, io: IoScope) {
  return {
    "joule:function/outbound-http": {
      // A suspending import (JSPI): the guest waits, the worker does not.
      send: (req: OutgoingRequest): Promise<IncomingResponse> => io.guard(send(state, req, io.signal)),
    },
  };
}
