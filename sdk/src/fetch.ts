/**
 * The Web `fetch` inside a function, over the host's outbound-http import:
 * StarlingMonkey's own fetch needs wasi:http, which Joule does not grant.
 * The request is buffered, sent by the host (which checks the origin
 * against `capabilities.outboundHttp`, follows redirects and bounds sizes),
 * and the answer comes back as a Web `Response`. A denial rejects with
 * CapabilityDeniedError; other failures with a TypeError, as Web fetch does.
 */
import type * as OutboundHttp from "joule:function/outbound-http@0.1.0";
import { CapabilityDeniedError, witError } from "./errors.ts";

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

function notGranted(): Promise<Response> {
  return Promise.reject(
    new CapabilityDeniedError(
      'fetch() needs capabilities.outboundHttp in joule.json (for example ["https://api.example.com"])',
    ),
  );
}

function makeFetch(http: typeof OutboundHttp) {
  return async function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input instanceof URL ? input.href : input, init);
    const body = request.body === null ? new Uint8Array() : new Uint8Array(await request.arrayBuffer());
    const headers: Array<[string, string]> = [];
    request.headers.forEach((value, name) => {
      headers.push([name, value]);
    });
    let answer: OutboundHttp.IncomingResponse;
    try {
      answer = http.send({
        method: request.method,
        url: request.url,
        headers,
        body,
        followRedirects: init?.redirect !== "manual",
      });
    } catch (error) {
      const wit = witError(error);
      if (wit?.tag === "denied") throw new CapabilityDeniedError(wit.val);
      if (wit) throw new TypeError(`fetch ${wit.tag}: ${wit.val}`);
      throw error;
    }
    const response = new Response(
      NULL_BODY_STATUS.has(answer.status) ? null : (answer.body as Uint8Array<ArrayBuffer>),
      {
        status: answer.status,
        headers: answer.headers,
      },
    );
    Object.defineProperty(response, "url", { value: answer.url });
    Object.defineProperty(response, "redirected", { value: answer.redirected });
    return response;
  };
}

/** Makes the global `fetch` the host's, or one that says which grant is missing. */
export function installFetch(http: typeof OutboundHttp | undefined): void {
  (globalThis as { fetch: unknown }).fetch = http ? makeFetch(http) : notGranted;
}
