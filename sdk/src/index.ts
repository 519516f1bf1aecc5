/**
 * The Joule SDK: write a function as a Web-standard `fetch` handler, the way
 * Cloudflare Workers, Deno and Hono handlers are written, and `joule build`
 * turns it into a WebAssembly component.
 *
 * ```ts
 * import { defineFunction } from "@joule/sdk";
 *
 * export default defineFunction({
 *   async fetch(request, env, ctx) {
 *     ctx.log("hello");
 *     return Response.json({ greeting: env.GREETING });
 *   },
 * });
 * ```
 *
 * Inside a function the Web platform is there (`Request`, `Response`,
 * `Headers`, `URL`, `TextEncoder`, `crypto.getRandomValues`, `Date.now()`);
 * Node's APIs (`fs`, `process`, ...) are not, and nothing of the host is
 * reachable except what the function was granted: `fetch` reaches the
 * origins of `capabilities.outboundHttp`, `ctx.kv(name)` the stores of
 * `capabilities.kv`, `ctx.files` the files of `capabilities.files`.
 */

import type { Files } from "./files.ts";

export { CapabilityDeniedError } from "./errors.ts";
export type { Files } from "./files.ts";

/** The function's configured environment: `env` in `joule.json`, plus what the deploy request set. */
export type Env = Readonly<Record<string, string>>;

/** A named key-value store the function was granted (`capabilities.kv` in joule.json). */
export interface KvStore {
  /** The value as text, or null when there is none (or it expired). */
  get(key: string): Promise<string | null>;
  /** The value parsed as JSON, or null. */
  getJSON<T = unknown>(key: string): Promise<T | null>;
  /** The value's bytes, or null. */
  getBytes(key: string): Promise<Uint8Array | null>;
  /** Stores a string, bytes, or any other value as JSON; `ttlMs` makes it expire. */
  put(key: string, value: unknown, options?: { ttlMs?: number }): Promise<void>;
  /** Removes a key; true if it was there. */
  delete(key: string): Promise<boolean>;
  /** Keys starting with `prefix`, in order, at most `limit` (default 100, at most 1000). */
  list(options?: { prefix?: string; limit?: number }): Promise<string[]>;
}

/** Per-invocation context handed to `fetch`. */
export interface Context {
  /**
   * A key-value store by name. Calls to a store the function was not granted
   * fail with an error naming it (and the host audits the attempt).
   */
  kv(store: string): KvStore;
  /** The read-only files shipped with the function (`capabilities.files` in joule.json). */
  readonly files: Files;
  /** Id of the current request; the host tags every log line with it. */
  readonly requestId: string;
  /** Name the function is deployed under. */
  readonly functionName: string;
  /** Writes an info line to the host's structured log. Arguments are joined like `console.log`'s. */
  log(...data: unknown[]): void;
  /** Writes a warning line to the host's structured log. */
  warn(...data: unknown[]): void;
  /** Writes an error line to the host's structured log. */
  error(...data: unknown[]): void;
}

/** What a function module exports by default. */
export interface FunctionDefinition<E extends Env = Env> {
  /**
   * Optional one-time setup: build lookup tables, parse configuration,
   * warm caches. The host runs it once when the function is deployed and
   * starts every instance from a snapshot of memory taken right after, so
   * its cost is never paid on a request. `env` holds the function's plain
   * variables; secrets are not in it (a snapshot is kept on the host's
   * disk), read those in `fetch`. Randomness used here would be the same in
   * every instance; draw it in `fetch`. Throwing fails the deploy.
   */
  init?(env: E): void | Promise<void>;
  /**
   * Handles one HTTP request. `request.url` is absolute and its path is the
   * part after the function's mount point (`/fn/<name>`). Throwing, or
   * returning something that is not a `Response`, answers 502.
   */
  fetch(request: Request, env: E, ctx: Context): Response | Promise<Response>;
}

/**
 * Declares a function. It returns its argument unchanged; its purpose is the
 * types it gives `request`, `env` and `ctx` without annotations.
 */
export function defineFunction<E extends Env = Env>(definition: FunctionDefinition<E>): FunctionDefinition<E> {
  return definition;
}
