/**
 * Memory images (split-off data and deploy-time snapshots) as a worker holds
 * them: read and decoded once, the most recently used kept. Reading one is
 * the slow part of a cold start when it is not here yet (a snapshot's chunks
 * are decompressed and its digest checked: about 10 ms for a JS function's
 * 3 MB), so at deploy the main thread names the new version's images on
 * each worker's port (worker/protocol.ts) and each worker reads them while idle, before the first
 * request needs them. Images of engine functions are also paged then
 * (pagedImage), so that binding one to a spare writes only the pages that
 * differ from what the spare holds (engine.ts).
 */
import type { MemoryImage } from "../fuel/instrument.ts";
import { readChunkedSync } from "../store/chunk-store.ts";
import { decodeImage, type PagedImage, pagingSteps } from "./memory-image.ts";

/** Images a worker keeps, by count and by bytes (a snapshot can be as large as limits.memoryMb). */
const MAX_CACHED_IMAGES = 32;
export const MAX_CACHED_BYTES = 256 * 1024 * 1024;

/**
 * `paged`: the image as pages once asked for, null when it cannot be paged
 * (pagesOf); `paging` while that is under way, one step per turn.
 */
const cache = new Map<
  string,
  { image: MemoryImage; bytes: number; paged?: PagedImage | null; paging?: Generator<void, PagedImage | undefined> }
>();
let cachedBytes = 0;

export function loadImage(path: string): MemoryImage {
  let entry = cache.get(path);
  if (entry) cache.delete(path);
  else {
    const image = decodeImage(readChunkedSync(path));
    entry = { image, bytes: image.segments.reduce((n, s) => n + s.bytes.byteLength, 0) };
    cachedBytes += entry.bytes;
  }
  cache.set(path, entry);
  evict();
  return entry.image;
}

/** Drops the least recently used images while over either bound; the newest always stays. */
function evict(): void {
  while (cache.size > 1 && (cache.size > MAX_CACHED_IMAGES || cachedBytes > MAX_CACHED_BYTES)) {
    const oldest = cache.keys().next().value as string;
    cachedBytes -= cache.get(oldest)?.bytes ?? 0;
    cache.delete(oldest);
  }
}

/**
 * The image at `path` as pages with digests (memory-image.ts), if it is
 * cached and paged. `compute` pages it when it is not paged yet: one step
 * now (up to 4 MiB, about 3.5 ms here: a JS function's whole image), the
 * rest one step per turn of the event loop (drain), so a larger image is
 * ready later. Only for idle time, never on a request's path. Never reads
 * from disk.
 */
export function pagedImage(path: string, compute: boolean): PagedImage | undefined {
  const entry = cache.get(path);
  if (entry && entry.paged === undefined && compute && !pageStep(path)) {
    if (!queued.some((q) => q.path === path && q.paged)) queued.push({ path, paged: true, read: true });
    drain();
  }
  return entry?.paged ?? undefined;
}

/** Pages the cached image at `path` one step further; whether it is done (or gone, or never started). */
function pageStep(path: string): boolean {
  const entry = cache.get(path);
  if (!entry || entry.paged !== undefined) return true;
  entry.paging ??= pagingSteps(entry.image);
  const step = entry.paging.next();
  if (!step.done) return false;
  entry.paging = undefined;
  entry.paged = step.value ?? null;
  // Its assembled pages count against the cache like the image's own bytes.
  const copied = entry.paged?.copied ?? 0;
  entry.bytes += copied;
  cachedBytes += copied;
  evict();
  return true;
}

/**
 * Images named for preloading, not yet read, and whether to page them too;
 * `read` once an image was read (or named by pagedImage, which never
 * reads): if it has been evicted since, it is dropped, not read again.
 */
const queued: Array<{ path: string; paged: boolean; read?: boolean }> = [];
let busy = false;
let stopped = false;
let draining = false;

/**
 * A task runs: no preload starts until it ends, even while it waits (an
 * outbound fetch under JSPI). A deadline that terminates the worker must
 * not find it decompressing (stopPreloads).
 */
export function holdPreloads(): void {
  busy = true;
}

/** The task ended: queued preloads go on, one per turn of the event loop. */
export function resumePreloads(): void {
  busy = false;
  drain();
}

function drain(): void {
  if (draining || busy || stopped || queued.length === 0) return;
  draining = true;
  setImmediate(() => {
    draining = false;
    if (busy || stopped) return;
    const next = queued.shift() as (typeof queued)[number];
    try {
      // Read on one turn, paged on the next ones: a task that arrives waits for one step, not all.
      if (cache.has(next.path)) {
        if (next.paged && !pageStep(next.path)) queued.unshift(next);
      } else if (!next.read) {
        loadImage(next.path);
        if (next.paged) queued.unshift({ ...next, read: true });
      }
    } catch {
      // An image that cannot be read fails the request that needs it, with its error.
    }
    drain();
  });
}

/** In a worker: the main thread names images to read (and page) while no task runs. */
export function queuePreload(paths: readonly string[], paged: boolean): void {
  queued.push(...paths.map((path) => ({ path, paged })));
  drain();
}

/** The pool is closing: no image is read from now on (a worker terminated mid-decompression aborts the process). */
export function stopPreloads(): void {
  stopped = true;
}
