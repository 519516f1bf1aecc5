/**
 * Deploy-time snapshots, the Wizer algorithm on the instances jco makes:
 * the host instantiates the function once, runs the guest's init(), and
 * keeps what init left behind — each core module's memory (only the 4 KiB
 * pages that are not zero) and its mutable globals. Every instance of that
 * version then starts from the snapshot: the memory image is written (and
 * the memory grown to the size init left it at) where the module's own data
 * would have gone, the globals are set, and init does not run again.
 *
 * What cannot be captured is refused, not approximated: components whose
 * modules have start functions, write data at instantiation or keep
 * mutable globals the host cannot read are not snapshotted (init then runs
 * in every new instance), and an init that changes a table fails the deploy
 * (JOULE_ERR_DEPLOY_SNAPSHOT), since tables are not part of the image.
 *
 * After init and before the capture, an SDK-built guest takes one sample
 * request that the SDK answers itself (`warm-up` in sdk/wit/world.wit), so
 * the snapshot holds the request path compiled, not just the state.
 *
 * A snapshot is kept on the host's disk, so init sees the function's plain
 * env only: secret references are left out (see sdk/src/index.ts).
 */

import { secretName } from "../capabilities/secrets.ts";
import { JouleError } from "../errors.ts";
import type { MemoryImage } from "../fuel/instrument.ts";
import type { CoreInstance } from "./engine.ts";
import { MAX_CACHED_BYTES } from "./image-cache.ts";
import type { FunctionInstance } from "./instance.ts";
import { coalesce, encodeImage, PAGE } from "./memory-image.ts";
import { sanitize } from "./response.ts";
import type { FunctionImage } from "./types.ts";

/** The import a guest engine's fetch starts a request with (capabilities/wasi-http/). */
const WASI_HTTP_HANDLE = "wasi:http/outgoing-handler#handle";

export interface CapturedSnapshot {
  /** Per core module file: its memory's size in 64 KiB pages and its non-zero pages, encoded. */
  memories: Record<string, { pages: number; image: Uint8Array }>;
  /** Per core module file: exported mutable global → value. */
  globals: Record<string, Record<string, number | bigint>>;
  /** Fuel init and the warm-up used. */
  fuel: number;
}

/** The env init may see: secret references left out, so no secret is ever written into a snapshot. */
export function initEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => secretName(value) === undefined));
}

/** The non-zero 4 KiB pages of a memory, as image segments. */
export function memoryImage(memory: WebAssembly.Memory): MemoryImage {
  const words = new BigUint64Array(memory.buffer);
  const bytes = new Uint8Array(memory.buffer);
  const wordsPerPage = PAGE / 8;
  const segments: MemoryImage["segments"] = [];
  let runStart = -1;
  const pages = bytes.length / PAGE;
  for (let page = 0; page <= pages; page++) {
    let used = false;
    if (page < pages) {
      const first = page * wordsPerPage;
      for (let w = first; w < first + wordsPerPage; w++) {
        if (words[w] !== 0n) {
          used = true;
          break;
        }
      }
    }
    if (used && runStart < 0) runStart = page;
    if (!used && runStart >= 0) {
      segments.push({ offset: runStart * PAGE, bytes: bytes.slice(runStart * PAGE, page * PAGE) });
      runStart = -1;
    }
  }
  return coalesce({ segments });
}

/** Every element of every table the core instances export, to compare before and after init. */
function tables(cores: readonly CoreInstance[]): unknown[][] {
  const seen: unknown[][] = [];
  for (const { instance } of cores) {
    for (const value of Object.values(instance.exports)) {
      if (!(value instanceof WebAssembly.Table)) continue;
      const entries: unknown[] = [];
      // A 64-bit table takes BigInt indices.
      const index = typeof (value.length as unknown) === "bigint" ? BigInt : Number;
      for (let i = 0; i < Number(value.length); i++) entries.push(value.get(index(i) as number));
      seen.push(entries);
    }
  }
  return seen;
}

function sameTables(a: unknown[][], b: unknown[][]): boolean {
  return a.length === b.length && a.every((t, i) => t.length === b[i]?.length && t.every((e, j) => e === b[i]?.[j]));
}

/**
 * The SDK's warm-up after init (FunctionInstance.warmUp), and the fuel it
 * used. It calls no code of the function's own, so a failure that is not a
 * limit means init (or the module's top level) left the engine unfit for
 * requests.
 */
async function warmUp(instance: FunctionInstance, fuelLimit: number): Promise<number> {
  try {
    return (await instance.warmUp(fuelLimit)) ? instance.lastFuel : 0;
  } catch (error) {
    // A limit is the function's own (limits.fuel, limits.memoryMb): reported as it is.
    if (error instanceof JouleError && error.code.startsWith("JOULE_ERR_LIMIT_")) throw error;
    const why = sanitize(error instanceof Error ? error.message : String(error));
    throw new JouleError(
      "JOULE_ERR_DEPLOY_SNAPSHOT",
      `the SDK's warm-up request after init() failed (${why}): does init() replace a global that requests need (Request, Response, URL, JSON)? Or deploy with snapshot: false`,
    );
  }
}

/**
 * Runs init in `instance` (made from the split images, not a snapshot) and
 * captures what it left; undefined when the guest has no init (its
 * instances then start from the component's own data as they are).
 */
export async function takeSnapshot(
  instance: FunctionInstance,
  image: FunctionImage,
  fuelLimit: number,
): Promise<CapturedSnapshot | undefined> {
  const before = tables(instance.cores);
  const watch = instance.watchResources();
  let ran: boolean;
  let fuel = 0;
  try {
    ran = await instance.init(fuelLimit);
    fuel = instance.lastFuel;
    if (ran) fuel += await warmUp(instance, fuelLimit);
  } finally {
    watch.stop();
  }
  if (!ran) return undefined;
  // An outbound request init made is a resource only while it is open: one it finished with, its
  // response read and dropped, leaves nothing the snapshot could hold (instance.settled says so).
  const resources = [...watch.stop()].filter((name) => !(name === WASI_HTTP_HANDLE && instance.settled));
  if (resources.length > 0) {
    throw new JouleError(
      "JOULE_ERR_DEPLOY_SNAPSHOT",
      `init() (or the warm-up request after it) took host resources a snapshot cannot hold (${resources.join(", ")}: stdout/stderr writes, timers, streams): move that work into fetch(), or deploy with snapshot: false`,
      { resources },
    );
  }
  if (!sameTables(before, tables(instance.cores))) {
    throw new JouleError(
      "JOULE_ERR_DEPLOY_SNAPSHOT",
      "init() (or the warm-up request after it) changed a table, which a snapshot cannot hold: move that work into fetch(), or deploy with snapshot: false",
    );
  }
  const memories: CapturedSnapshot["memories"] = {};
  const globals: CapturedSnapshot["globals"] = {};
  let kept = 0;
  for (const { name, instance: core } of instance.cores) {
    const meters = image.meters[name];
    const memory = meters?.memory === undefined ? undefined : core.exports[meters.memory];
    if (memory instanceof WebAssembly.Memory) {
      const captured = memoryImage(memory);
      kept += captured.segments.reduce((sum, segment) => sum + segment.bytes.byteLength, 0);
      // A worker keeps at most this much of images: a larger one would be read again at every cold start.
      if (kept > MAX_CACHED_BYTES) {
        throw new JouleError(
          "JOULE_ERR_DEPLOY_SNAPSHOT",
          `init() left more than ${MAX_CACHED_BYTES / 2 ** 20} MiB of memory in use, more than a snapshot may hold: allocate less in init, or deploy with snapshot: false`,
          { limitMb: MAX_CACHED_BYTES / 2 ** 20 },
        );
      }
      memories[name] = { pages: memory.buffer.byteLength / 65536, image: encodeImage(captured) };
    }
    const values: Record<string, number | bigint> = {};
    for (const global of meters?.globals ?? []) values[global] = (core.exports[global] as WebAssembly.Global).value;
    if (Object.keys(values).length > 0) globals[name] = values;
  }
  return { memories, globals, fuel };
}
