/**
 * The Web `fetch` inside a function: the guest engine's own (StarlingMonkey's,
 * over wasi:http), so several requests run at once, bodies stream and
 * AbortSignal works. The host checks every request against
 * `capabilities.outboundHttp`, its address policy and limits. Two things
 * the engine's fetch leaves out are added here:
 * - redirects are followed (at most MAX_REDIRECTS), each hop a new request
 *   the host checks again; 303 (and 301/302 after a POST) turn into a GET;
 *   credentials are dropped when the origin changes; `redirect: "manual"`
 *   and `"error"` behave as the Fetch standard says;
 * - a request the host refused rejects saying why (the engine reports only
 *   a network error): CapabilityDeniedError for a denial, a TypeError
 *   naming the limit of limits.outbound it hit.
 * A function without the grant gets a `fetch` that names the grant.
 */
import { outboundRefusal } from "joule:function/host@0.2.0";
import { CapabilityDeniedError } from "./errors.ts";

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Fewer than the Fetch standard's 20: each hop is a request upstream, counted in limits.outbound.requests. */
const MAX_REDIRECTS = 5;

function notGranted(): Promise<Response> {
  return Promise.reject(
    new CapabilityDeniedError(
      'fetch() needs capabilities.outboundHttp in joule.json (for example ["https://api.example.com"])',
    ),
  );
}

function followingRedirects(native: typeof fetch): typeof fetch {
  return async function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const first = new Request(input instanceof URL ? input.href : input, init);
    const mode = init?.redirect ?? (input instanceof Request ? input.redirect : undefined) ?? "follow";
    // A stream body goes out as it is and cannot be sent twice (a 307/308 then fails, as the standard says).
    const streamed = init?.body instanceof ReadableStream;
    let body: BodyInit | null = first.body === null ? null : streamed ? first.body : await first.arrayBuffer();
    let method = first.method;
    let url = first.url;
    const headers = new Headers(first.headers);
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      if (target.username || target.password) {
        throw new TypeError("fetch: credentials in URLs are not sent; use an Authorization header");
      }
      let response: Response;
      try {
        response = await native(url, { method, headers, body, redirect: "manual", signal: first.signal });
      } catch (error) {
        const why = outboundRefusal(url);
        if (why?.[0] === "denied") throw new CapabilityDeniedError(why[1]);
        if (why) throw new TypeError(`fetch ${why[0]}: ${why[1]}`);
        throw error;
      }
      const location = REDIRECTS.has(response.status) ? response.headers.get("location") : null;
      if (mode === "manual" || location === null) {
        Object.defineProperty(response, "url", { value: url });
        Object.defineProperty(response, "redirected", { value: hop > 0 });
        return response;
      }
      await response.body?.cancel();
      if (mode === "error") throw new TypeError(`fetch: ${url} redirected, and redirect is "error"`);
      if (hop >= MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw new CapabilityDeniedError(
          `JOULE_ERR_CAPABILITY_DENIED: outboundHttp ${next.protocol}: only http and https requests can be granted`,
        );
      }
      if (response.status === 303 ? method !== "HEAD" : response.status <= 302 && method === "POST") {
        method = "GET";
        body = null;
        for (const name of [...headers.keys()]) if (name.startsWith("content-")) headers.delete(name);
      } else if (streamed && body !== null) {
        throw new TypeError("fetch: a redirect would send a streamed body twice");
      }
      if (next.origin !== new URL(url).origin) {
        headers.delete("authorization");
        headers.delete("cookie");
      }
      url = next.href;
    }
  };
}

/** The engine's `fetch`, following redirects, when the function may use it; else one that names the grant. */
export function installFetch(granted: boolean): void {
  const scope = globalThis as { fetch: typeof fetch };
  scope.fetch = granted ? followingRedirects(scope.fetch) : notGranted;
}
