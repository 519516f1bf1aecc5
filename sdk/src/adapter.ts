/**
 * The bridge between the WIT world (`sdk/wit/world.wit`) and a Web-standard
 * handler. `joule build` generates an entry module that does
 * `export const { handler, lifecycle, warmUp } = adapt(userDefault)`; function
 * authors never import this file themselves.
 */

import * as body from "joule:function/body@0.2.0";
import type * as FilesImport from "joule:function/files@0.2.0";
import { environment, type LogLevel, log } from "joule:function/host@0.2.0";
import type * as KvImport from "joule:function/kv@0.2.0";
import { installFetch } from "./fetch.ts";
import { type Files, makeFiles } from "./files.ts";
import { installFormData } from "./form-data.ts";
import type { Context, Env, FunctionDefinition, KvStore } from "./index.ts";

/**
 * The capability imports the function's build has: `joule build` generates
 * the world from joule.json's `capabilities` and passes only those, so a
 * component imports exactly what it was granted.
 */
export interface GrantedImports {
  kv?: typeof KvImport;
  /** Granted: the engine's own fetch (over wasi:http) stays (fetch.ts). */
  outboundHttp?: boolean;
  files?: typeof FilesImport;
}

let kv: typeof KvImport | undefined;

/** The request record of the WIT `types` interface. */
export interface WitRequest {
  method: string;
  /** As the client called it, the mount (`/fn/<name>`) included. */
  url: string;
  mount: string;
  headers: Array<[string, string]>;
  /** The body, or nothing yet when `bodyStreamed` (the rest comes from body.read). */
  body: Uint8Array;
  bodyStreamed: boolean;
}

/** The response record of the WIT `types` interface. */
export interface WitResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

export interface WitInvocation {
  requestId: string;
  functionName: string;
}

const BODYLESS_METHODS = new Set(["GET", "HEAD"]);

let cachedEnv: Env | undefined;

/** The environment does not change during an instance's life: read it once. */
function currentEnv(): Env {
  cachedEnv ??= Object.freeze(Object.fromEntries(environment()));
  return cachedEnv;
}

function format(data: unknown[]): string {
  return data
    .map((item) => {
      if (typeof item === "string") return item;
      if (item instanceof Error) return item.stack ?? `${item.name}: ${item.message}`;
      try {
        return JSON.stringify(item);
      } catch {
        return String(item);
      }
    })
    .join(" ");
}

function logger(level: LogLevel) {
  return (...data: unknown[]) => log(level, format(data));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A kv-error from the host as an Error with its message. */
function kvCall<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    const payload =
      (error as { payload?: { tag?: string; val?: string } })?.payload ?? (error as { tag?: string; val?: string });
    if (payload && typeof payload.val === "string") throw new Error(`kv ${payload.tag}: ${payload.val}`);
    throw error;
  }
}

function kvStore(store: string): KvStore {
  if (!kv) throw new Error(`ctx.kv("${store}") needs capabilities.kv in joule.json`);
  const granted = kv;
  const bytes = (key: string) => kvCall(() => granted.get(store, key)) ?? null;
  return {
    async get(key) {
      const value = bytes(key);
      return value === null ? null : decoder.decode(value);
    },
    async getJSON<T>(key: string) {
      const value = bytes(key);
      return value === null ? null : (JSON.parse(decoder.decode(value)) as T);
    },
    async getBytes(key) {
      return bytes(key);
    },
    async put(key, value, options) {
      const data =
        value instanceof Uint8Array ? value : encoder.encode(typeof value === "string" ? value : JSON.stringify(value));
      const ttl = options?.ttlMs === undefined ? undefined : BigInt(Math.max(0, Math.floor(options.ttlMs)));
      kvCall(() => granted.set(store, key, data, ttl));
    },
    async delete(key) {
      return kvCall(() => granted.delete(store, key));
    },
    async list(options) {
      return kvCall(() => granted.list(store, options?.prefix ?? "", Math.min(options?.limit ?? 100, 1000)));
    },
  };
}

/** Bytes asked of the host per read of a streamed request body. */
const READ_BYTES = 64 * 1024;

/** A streamed request body, read from the host as the function reads it (body.read suspends until bytes come). */
function requestStream(first: Uint8Array): ReadableStream<Uint8Array> {
  let pending: Uint8Array | undefined = first.byteLength > 0 ? first : undefined;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = pending ?? body.read(READ_BYTES);
      pending = undefined;
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

/**
 * The Request the function's fetch gets. Its URL is the one the client
 * called without the mount (`/fn/<name>`), as in SDKs before 0.2.
 */
function toRequest(req: WitRequest): Request {
  const init: RequestInit & { duplex?: "half" } = { method: req.method, headers: req.headers };
  if (!BODYLESS_METHODS.has(req.method.toUpperCase())) {
    if (req.bodyStreamed) {
      init.body = requestStream(req.body);
      init.duplex = "half";
    } else if (req.body.byteLength > 0) init.body = req.body as Uint8Array<ArrayBuffer>;
  }
  const url = new URL(req.url);
  if (req.mount && url.pathname.startsWith(req.mount)) {
    const origin = url.origin;
    const rest = req.url.slice(origin.length + req.mount.length);
    return new Request(`${origin}${rest.startsWith("/") ? rest : `/${rest}`}`, init);
  }
  return new Request(req.url, init);
}

/** Bodies held whole, past which a response is streamed even if all of it is there already. */
const WHOLE_BYTES = 256 * 1024;
const WAITING = Symbol("waiting");

/** Microtask turns a chunk that is there already takes to arrive (an in-memory body: 2 measured), at most. */
const READY_TURNS = 3;

/**
 * What `read` gives, or WAITING when it is not there within READY_TURNS
 * microtask turns (it waits on a timer, an upstream: an event-loop turn).
 * No timer is used: a snapshot taken after the warm-up may hold none, and
 * the host treats timers left pending as unfinished work.
 */
async function now<T>(read: Promise<T>): Promise<T | typeof WAITING> {
  let turns: Promise<typeof WAITING> = Promise.resolve(WAITING);
  for (let i = 0; i < READY_TURNS; i++) turns = turns.then((value) => value);
  return Promise.race([read, turns]);
}

/**
 * The response as the host takes it. A body that is all there (a string,
 * JSON, bytes: every chunk ready without waiting) goes back whole, in one
 * record. One whose next chunk has to be waited for (server-sent events, a
 * stream fed by timers or an upstream), or that is large, is streamed: the
 * head goes out at once and each chunk as it comes (body.respond, body.write).
 */
async function toWitResponse(response: Response): Promise<WitResponse> {
  const headers: Array<[string, string]> = [];
  response.headers.forEach((value, name) => {
    headers.push([name, value]);
  });
  const stream = response.body;
  if (stream === null) return { status: response.status, headers, body: new Uint8Array(0) };
  const reader = stream.getReader();
  const held: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const read = reader.read();
    const next = await now(read);
    if (next !== WAITING && next.done) {
      return {
        status: response.status,
        headers,
        body: held.length === 1 ? (held[0] as Uint8Array) : concat(held, size),
      };
    }
    if (next !== WAITING) {
      held.push(next.value);
      size += next.value.byteLength;
    }
    if (next === WAITING || size > WHOLE_BYTES) {
      body.respond(response.status, headers);
      for (const chunk of held) body.write(chunk);
      if (next === WAITING) {
        // The chunk that was not there yet: its read is still pending.
        const late = await read;
        if (late.done) return { status: response.status, headers: [], body: new Uint8Array(0) };
        body.write(late.value);
      }
      for (;;) {
        const more = await reader.read();
        if (more.done) break;
        body.write(more.value);
      }
      return { status: response.status, headers: [], body: new Uint8Array(0) };
    }
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** A function failure that the host reports as a 502 with this message. */
function failure(message: string): never {
  // componentize-js maps a thrown value to the `err` case of a `result` return.
  throw message;
}

/** Takes one request the way every request is taken: a Request in, `fetch`, a checked Response out. */
async function serve(
  fetch: FunctionDefinition["fetch"],
  req: WitRequest,
  inv: WitInvocation,
  env: () => Env,
  files: Files,
): Promise<WitResponse> {
  const ctx: Context = {
    requestId: inv.requestId,
    functionName: inv.functionName,
    kv: kvStore,
    files,
    log: logger("info"),
    warn: logger("warn"),
    error: logger("error"),
  };
  let response: unknown;
  try {
    response = await fetch(toRequest(req), env(), ctx);
  } catch (error) {
    failure(error instanceof Error ? `${error.name}: ${error.message}` : `uncaught: ${format([error])}`);
  }
  if (!(response instanceof Response)) failure("fetch() must return a Response");
  return toWitResponse(response);
}

/**
 * Answers the host's warm-up request (`warm-up` in sdk/wit/world.wit) in
 * place of the function's fetch: what a typical handler does (URL, a JSON
 * body, Response.json, headers, text), touching no host resource. The env
 * is empty: nothing read here may stay in the snapshot.
 */
async function warmUpFetch(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const text = await request.text();
  const body: unknown = text === "" ? null : JSON.parse(text);
  const response = Response.json({ body, path: url.pathname, query: url.searchParams.get("query") });
  response.headers.set("x-warm-up", "1");
  decoder.decode(encoder.encode(text));
  return response;
}

const NO_ENV: Env = Object.freeze({});

export function adapt(definition: FunctionDefinition, granted: GrantedImports = {}) {
  if (typeof definition?.fetch !== "function") {
    throw new TypeError("the default export must be defineFunction({ fetch(request, env, ctx) { ... } })");
  }
  kv = granted.kv;
  installFetch(granted.outboundHttp === true);
  installFormData();
  const files: Files = makeFiles(granted.files);
  const lifecycle = {
    async init(): Promise<void> {
      if (typeof definition.init !== "function") return;
      // The console writes to stdout, a resource whose handle a snapshot cannot keep:
      // during init it goes to the host log instead.
      const saved = { ...console };
      const levels: Record<string, LogLevel> = { debug: "debug", warn: "warn", error: "error", trace: "debug" };
      for (const [method, value] of Object.entries(console)) {
        if (typeof value === "function") Object.assign(console, { [method]: logger(levels[method] ?? "info") });
      }
      try {
        // Not through currentEnv(): nothing read at init may stay cached into the snapshot.
        await definition.init(Object.freeze(Object.fromEntries(environment())));
      } catch (error) {
        failure(error instanceof Error ? `init: ${error.name}: ${error.message}` : `init: ${format([error])}`);
      } finally {
        Object.assign(console, saved);
      }
    },
  };
  let warmingUp = false;
  const warmUp = {
    begin(): void {
      warmingUp = true;
    },
  };
  const handler = {
    handle(req: WitRequest, inv: WitInvocation): Promise<WitResponse> {
      if (warmingUp) {
        warmingUp = false;
        return serve(warmUpFetch, req, inv, () => NO_ENV, files);
      }
      return serve(definition.fetch, req, inv, currentEnv, files);
    },
  };
  return { handler, lifecycle, warmUp };
}
