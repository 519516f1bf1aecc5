/**
 * wasi:http/types' resources for outbound requests: the request a guest
 * builds (method, scheme, authority, path, headers, body), the future of
 * its response, the response and its body. The guest engine's own `fetch`
 * (StarlingMonkey's, over wasi:http) drives them from its event loop, so
 * several requests of one invocation run at once and timers keep firing
 * while they wait. The request itself goes out in outgoing-handler.ts.
 */
import type { IncomingMessage } from "node:http";
import { EventPollable, type IoScope, Pollable } from "../io.ts";
import { RequestBodyStream, type ResponseBodyStream } from "./bodies.ts";
import { Fields } from "./fields.ts";

export type Method = { tag: string; val?: string };
export type Scheme = { tag: "HTTP" | "HTTPS" | "other"; val?: string };
/** The `error-code` variant of wasi:http/types (a few of its cases, as the host uses them). */
export type ErrorCode = { tag: string; val?: unknown };

const ALREADY = Object.freeze({ tag: "err", val: undefined });

export class OutgoingRequest {
  readonly #headers: Fields;
  #method: Method = { tag: "get" };
  #scheme: Scheme | undefined;
  #authority: string | undefined;
  #pathWithQuery: string | undefined;
  #body: OutgoingBody | undefined;

  constructor(headers: Fields) {
    this.#headers = headers.freeze();
  }

  body(): OutgoingBody {
    if (this.#body) throw undefined; // the `err` case: only the first call gets it
    this.#body = new OutgoingBody();
    return this.#body;
  }

  method(): Method {
    return this.#method;
  }

  setMethod(method: Method): void {
    if (method.tag === "other" && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method.val ?? "")) throw undefined;
    this.#method = method;
  }

  pathWithQuery(): string | undefined {
    return this.#pathWithQuery;
  }

  setPathWithQuery(path: string | undefined): void {
    this.#pathWithQuery = path;
  }

  scheme(): Scheme | undefined {
    return this.#scheme;
  }

  setScheme(scheme: Scheme | undefined): void {
    this.#scheme = scheme;
  }

  authority(): string | undefined {
    return this.#authority;
  }

  setAuthority(authority: string | undefined): void {
    this.#authority = authority;
  }

  headers(): Fields {
    return this.#headers;
  }

  /** The body the guest made, if it made one (outgoing-handler.ts). */
  get outgoingBody(): OutgoingBody | undefined {
    return this.#body;
  }
}

export class RequestOptions {
  #connectTimeout: bigint | undefined;
  #firstByteTimeout: bigint | undefined;
  #betweenBytesTimeout: bigint | undefined;

  connectTimeout(): bigint | undefined {
    return this.#connectTimeout;
  }

  setConnectTimeout(ns: bigint | undefined): void {
    this.#connectTimeout = ns;
  }

  firstByteTimeout(): bigint | undefined {
    return this.#firstByteTimeout;
  }

  setFirstByteTimeout(ns: bigint | undefined): void {
    this.#firstByteTimeout = ns;
  }

  betweenBytesTimeout(): bigint | undefined {
    return this.#betweenBytesTimeout;
  }

  setBetweenBytesTimeout(ns: bigint | undefined): void {
    this.#betweenBytesTimeout = ns;
  }
}

export class OutgoingBody {
  #stream: RequestBodyStream | undefined;
  #finished = false;
  #onFinish: (() => void) | undefined;
  /** Set by outgoing-handler.ts: the invocation's request-body bound. */
  limit = Number.MAX_SAFE_INTEGER;

  write(): RequestBodyStream {
    if (this.#stream) throw undefined;
    this.#stream = new RequestBodyStream(this.limit);
    return this.#stream;
  }

  static finish(body: OutgoingBody, _trailers: Fields | undefined): void {
    body.#finished = true;
    body.#stream?.close();
    body.#onFinish?.();
  }

  /** The whole body when the guest has finished it already (a length can then be sent), else undefined. */
  get complete(): number | undefined {
    return this.#finished ? (this.#stream?.written ?? 0) : undefined;
  }

  /** Hands the body to an open connection: what was written, then the rest, then its end. */
  connect(write: (bytes: Uint8Array) => void, end: () => void): void {
    this.#stream ??= new RequestBodyStream(this.limit);
    this.#stream.connect(write);
    if (this.#finished) end();
    else this.#onFinish = end;
  }
}

/** The response, once its head arrived, or why there is none. */
export type Outcome = { ok: true; response: IncomingResponse } | { ok: false; error: ErrorCode };

export class FutureIncomingResponse {
  readonly #scope: IoScope;
  #outcome: Outcome | undefined;
  #taken = false;
  #waiters: Array<() => void> = [];
  /** Closes the connection when the guest drops the future before the response came (an aborted fetch). */
  readonly #abandon: () => void;

  constructor(scope: IoScope, abandon: () => void) {
    this.#scope = scope;
    this.#abandon = abandon;
  }

  settle(outcome: Outcome): void {
    if (this.#outcome) return;
    this.#outcome = outcome;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  subscribe(): Pollable {
    return new EventPollable(
      this.#scope,
      () => this.#outcome !== undefined,
      () => new Promise((resolve) => this.#waiters.push(resolve)),
    );
  }

  get():
    | { tag: "ok"; val: { tag: "ok"; val: IncomingResponse } | { tag: "err"; val: ErrorCode } }
    | typeof ALREADY
    | undefined {
    if (!this.#outcome) return undefined;
    if (this.#taken) return ALREADY;
    this.#taken = true;
    const outcome = this.#outcome;
    return { tag: "ok", val: outcome.ok ? { tag: "ok", val: outcome.response } : { tag: "err", val: outcome.error } };
  }

  [Symbol.dispose](): void {
    if (!this.#taken) this.#abandon();
  }
}

export class IncomingResponse {
  readonly #status: number;
  readonly #headers: Fields;
  #body: IncomingBody | undefined;
  readonly #makeStream: () => ResponseBodyStream;

  constructor(message: IncomingMessage, makeStream: () => ResponseBodyStream) {
    this.#status = message.statusCode ?? 502;
    const pairs: Array<[string, Uint8Array]> = [];
    for (let i = 0; i + 1 < message.rawHeaders.length; i += 2) {
      pairs.push([message.rawHeaders[i] as string, Buffer.from(message.rawHeaders[i + 1] as string, "latin1")]);
    }
    this.#headers = Fields.received(pairs);
    this.#makeStream = makeStream;
  }

  status(): number {
    return this.#status;
  }

  headers(): Fields {
    return this.#headers;
  }

  consume(): IncomingBody {
    if (this.#body) throw undefined;
    this.#body = new IncomingBody(this.#makeStream);
    return this.#body;
  }
}

export class IncomingBody {
  #stream: ResponseBodyStream | undefined;
  readonly #make: () => ResponseBodyStream;

  constructor(make: () => ResponseBodyStream) {
    this.#make = make;
  }

  stream(): ResponseBodyStream {
    if (this.#stream) throw undefined;
    this.#stream = this.#make();
    return this.#stream;
  }

  static finish(_body: IncomingBody): FutureTrailers {
    return new FutureTrailers();
  }
}

/** Trailers are not passed on: the future says there were none. */
export class FutureTrailers {
  #taken = false;

  subscribe(): Pollable {
    return new Pollable();
  }

  get(): { tag: "ok"; val: { tag: "ok"; val: undefined } } | typeof ALREADY {
    if (this.#taken) return ALREADY;
    this.#taken = true;
    return { tag: "ok", val: { tag: "ok", val: undefined } };
  }
}

/** Resources of the incoming side of wasi:http, which Joule functions do not export: never made here. */
export class IncomingRequest {}
export class OutgoingResponse {}
export class ResponseOutparam {
  /** Never made: a component that calls `set` traps. */
  readonly never = true;

  static set(): void {
    throw new WebAssembly.RuntimeError("wasi:http/incoming-handler is not how Joule calls a function");
  }
}
