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
 * reachable except what the function was granted.
 */

/** The function's configured environment: `env` in `joule.json`, plus what the deploy request set. */
export type Env = Readonly<Record<string, string>>;

/** Per-invocation context handed to `fetch`. */
export interface Context {
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
