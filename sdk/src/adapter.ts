/**
 * The bridge between the WIT world (`sdk/wit/world.wit`) and a Web-standard
 * handler. `joule build` generates an entry module that does
 * `export const { handler, lifecycle, warmUp } = adapt(userDefault)`; function
 * authors never import this file themselves.
 */

import type * as FilesImport from "joule:function/files@0.1.0";
import { environment, type LogLevel, log } from "joule:function/host@0.1.0";
import type * as KvImport from "joule:function/kv@0.1.0";
import type * as OutboundHttpImport from "joule:function/outbound-http@0.1.0";
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
  outboundHttp?: typeof OutboundHttpImport;
  files?: typeof FilesImport;
}

let kv: typeof KvImport | undefined;

/** The request record of the WIT `types` interface. */
export interface WitRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
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

function toRequest(req: WitRequest): Request {
  const init: RequestInit = { method: req.method, headers: req.headers };
  if (!BODYLESS_METHODS.has(req.method.toUpperCase()) && req.body.byteLength > 0)
    init.body = req.body as Uint8Array<ArrayBuffer>;
  return new Request(req.url, init);
}

async function toWitResponse(response: Response): Promise<WitResponse> {
  const body = new Uint8Array(await response.arrayBuffer());
  const headers: Array<[string, string]> = [];
  response.headers.forEach((value, name) => {
    headers.push([name, value]);
  });
  return { status: response.status, headers, body };
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
  installFetch(granted.outboundHttp);
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
