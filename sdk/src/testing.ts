/**
 * `@joule/sdk/testing`: call a function's handler directly from vitest or
 * `node --test`, without a host or a build.
 *
 * ```ts
 * import fn from "../src/index.ts";
 * import { createContext, createEnv } from "@joule/sdk/testing";
 *
 * const env = createEnv({ GREETING: "Hi" });          // joule.json's env, then these
 * const { ctx, logs } = createContext({ kv: { cache: { greeting: "hi" } } });
 * await fn.init?.(env);
 * const response = await fn.fetch(new Request("http://localhost/?name=you"), env, ctx);
 * ```
 *
 * `ctx.kv(store)` is in memory (stores granted by joule.json's
 * `capabilities.kv`, or named here; values, TTLs and the size limits as the
 * host has them); `ctx.files` reads `capabilities.files` from the
 * function's folder; `ctx.log/warn/error` (and only they) are captured in
 * `logs`. This module runs in Node, never in a function: it is the one part
 * of the SDK that may use Node's APIs.
 *
 * Where Node is not the guest: Node has its own APIs (`process`, `Buffer`,
 * `fs`) that a function does not, its `fetch` reaches any address (a
 * function's reaches only `capabilities.outboundHttp`), nothing is metered
 * or limited (fuel, memory, time, body sizes), the top level runs at import
 * (in a build it runs once, at build time, into the snapshot) and `init` runs
 * only when the test calls it; `console.log` goes to the test's output.
 * Secrets (`secret://` values) are not resolved: give their values to
 * `createEnv`. The build, not this, tells whether a package bundles.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { CapabilityDeniedError } from "./errors.ts";
import type { Files } from "./files.ts";
import type { Context, Env, KvStore } from "./index.ts";

const MAX_KEY_BYTES = 512;
const MAX_VALUE_BYTES = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Manifest {
  name?: string;
  env?: Record<string, string>;
  capabilities?: { kv?: string[]; files?: Record<string, string> };
}

/** joule.json of `dir`, or nothing when there is none. */
function manifestOf(dir: string): Manifest {
  try {
    return JSON.parse(readFileSync(join(dir, "joule.json"), "utf8")) as Manifest;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
}

/**
 * The function's environment: `env` from `dir`'s joule.json (default: the
 * working directory), then `values` over it, frozen as the host gives it.
 */
export function createEnv<E extends Env = Env>(values: Record<string, string> = {}, options: { dir?: string } = {}): E {
  const manifest = manifestOf(resolve(options.dir ?? "."));
  return Object.freeze({ ...(manifest.env ?? {}), ...values }) as E;
}

export interface LogLine {
  level: "info" | "warn" | "error";
  message: string;
}

export interface TestContextOptions {
  /** The function's folder, for joule.json and shipped files (default: the working directory). */
  dir?: string;
  /** Stores granted, each with its starting keys (default: joule.json's `capabilities.kv`, empty). */
  kv?: Record<string, Record<string, unknown>> | string[];
  requestId?: string;
  functionName?: string;
}

export interface TestContext {
  ctx: Context;
  /** What ctx.log/warn/error wrote, in order. */
  logs: LogLine[];
  /** The kv stores as they are now: store → key → bytes. */
  stores: Map<string, Map<string, { value: Uint8Array; expiresAt?: number }>>;
}

function encode(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  return encoder.encode(typeof value === "string" ? value : JSON.stringify(value));
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

function memoryStore(name: string, entries: Map<string, { value: Uint8Array; expiresAt?: number }>): KvStore {
  const live = (key: string) => {
    const entry = entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now()) entries.delete(key);
    return entries.get(key)?.value ?? null;
  };
  const checkKey = (key: string) => {
    if (encoder.encode(key).byteLength > MAX_KEY_BYTES)
      throw new Error(`kv too-large: keys are at most ${MAX_KEY_BYTES} bytes`);
  };
  return {
    async get(key) {
      checkKey(key);
      const value = live(key);
      return value === null ? null : decoder.decode(value);
    },
    async getJSON<T>(key: string) {
      checkKey(key);
      const value = live(key);
      return value === null ? null : (JSON.parse(decoder.decode(value)) as T);
    },
    async getBytes(key) {
      checkKey(key);
      return live(key);
    },
    async put(key, value, options) {
      checkKey(key);
      const bytes = encode(value);
      if (bytes.byteLength > MAX_VALUE_BYTES)
        throw new Error(`kv too-large: values are at most ${MAX_VALUE_BYTES} bytes (store ${name})`);
      const ttl = options?.ttlMs;
      entries.set(
        key,
        ttl === undefined ? { value: bytes } : { value: bytes, expiresAt: Date.now() + Math.max(0, ttl) },
      );
    },
    async delete(key) {
      checkKey(key);
      const had = live(key) !== null;
      entries.delete(key);
      return had;
    },
    async list(options) {
      const prefix = options?.prefix ?? "";
      const limit = Math.min(options?.limit ?? 100, 1000);
      return [...entries.keys()]
        .filter((key) => key.startsWith(prefix) && live(key) !== null)
        .sort()
        .slice(0, limit);
    },
  };
}

/** The files of `mounts` (guest path → source relative to `dir`), read from the folder as the host ships them. */
function folderFiles(dir: string, mounts: Record<string, string>): Files {
  const denied = (path: string) =>
    new CapabilityDeniedError(`files: ${path} is not shipped with the function (capabilities.files in joule.json)`);
  const source = (path: string): string => {
    if (!path.startsWith("/") || path.includes("\\") || path.includes("\0") || path.split("/").includes(".."))
      throw denied(path);
    for (const [mount, from] of Object.entries(mounts)) {
      if (mount.endsWith("/") ? path.startsWith(mount) : path === mount) {
        return resolve(dir, mount.endsWith("/") ? join(from, path.slice(mount.length)) : from);
      }
    }
    throw denied(path);
  };
  const read = async (path: string) => {
    try {
      return new Uint8Array(readFileSync(source(path)));
    } catch (error) {
      if (error instanceof CapabilityDeniedError) throw error;
      throw new Error(`files not-found: ${path}`);
    }
  };
  const walk = (root: string): string[] =>
    readdirSync(root, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(root, entry.name)) : entry.isFile() ? [join(root, entry.name)] : [],
    );
  return {
    bytes: read,
    text: async (path) => decoder.decode(await read(path)),
    json: async (path) => JSON.parse(decoder.decode(await read(path))),
    async list(guestDir) {
      const at = guestDir.endsWith("/") ? guestDir : `${guestDir}/`;
      const root = source(at);
      if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) return [];
      return walk(root)
        .map((file) => `${at}${relative(root, file).split(sep).join("/")}`)
        .sort();
    },
  };
}

/** A Context as the host gives one to `fetch`, with its kv, files and logs kept here. */
export function createContext(options: TestContextOptions = {}): TestContext {
  const dir = resolve(options.dir ?? ".");
  const manifest = manifestOf(dir);
  const stores: TestContext["stores"] = new Map();
  const granted = options.kv ?? manifest.capabilities?.kv ?? [];
  if (Array.isArray(granted)) for (const name of granted) stores.set(name, new Map());
  else
    for (const [name, keys] of Object.entries(granted)) {
      stores.set(name, new Map(Object.entries(keys).map(([key, value]) => [key, { value: encode(value) }])));
    }
  const logs: LogLine[] = [];
  const logger =
    (level: LogLine["level"]) =>
    (...data: unknown[]) => {
      logs.push({ level, message: format(data) });
    };
  const ctx: Context = {
    requestId: options.requestId ?? crypto.randomUUID(),
    functionName: options.functionName ?? manifest.name ?? "test",
    kv(store) {
      const entries = stores.get(store);
      if (!entries)
        throw new CapabilityDeniedError(`kv store "${store}" is not granted (capabilities.kv in joule.json)`);
      return memoryStore(store, entries);
    },
    files: folderFiles(dir, manifest.capabilities?.files ?? {}),
    log: logger("info"),
    warn: logger("warn"),
    error: logger("error"),
  };
  return { ctx, logs, stores };
}
