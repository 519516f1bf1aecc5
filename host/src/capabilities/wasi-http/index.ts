/**
 * wasi:http (types, outgoing-handler) as the host implements it: what the
 * guest engine's own `fetch` runs over. Always linked (the JS engine
 * imports it whatever the function does); a function without
 * `capabilities.outboundHttp` reaches nothing through it, and every denial
 * is audited, as with joule:function/outbound-http.
 */
import type { IoScope } from "../io.ts";
import type { OutboundHttpState } from "../outbound-http.ts";
import { Fields } from "./fields.ts";
import { outgoingHandler } from "./outgoing-handler.ts";
import {
  FutureIncomingResponse,
  FutureTrailers,
  IncomingBody,
  IncomingRequest,
  IncomingResponse,
  OutgoingBody,
  OutgoingRequest,
  OutgoingResponse,
  RequestOptions,
  ResponseOutparam,
} from "./requests.ts";

export function wasiHttpImports(state: OutboundHttpState, scope: IoScope) {
  return {
    "wasi:http/types": {
      Fields,
      FutureIncomingResponse,
      FutureTrailers,
      IncomingBody,
      IncomingRequest,
      IncomingResponse,
      OutgoingBody,
      OutgoingRequest,
      OutgoingResponse,
      RequestOptions,
      ResponseOutparam,
      // The error in an I/O error, when it is an HTTP one: the host's stream errors never are.
      httpErrorCode: () => undefined,
    },
    "wasi:http/outgoing-handler": { handle: outgoingHandler(state, scope) },
  };
}
