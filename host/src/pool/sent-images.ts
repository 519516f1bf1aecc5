/**
 * Function images by reference, the main thread's side. A task used to
 * carry its function's whole image (core modules, paths, grants, env):
 * structured-cloning it cost the main thread 10–30 µs and the worker 30–40
 * µs on every request. A worker keeps the images it was sent
 * (worker/kept-images.ts), and a task carries its image only to a worker
 * that does not hold it yet.
 *
 * Each image object gets an id, so a new image of the same version (the one
 * a deploy-time snapshot makes) is a new id. Per worker, both sides hold at
 * most IMAGES_PER_WORKER, dropping the oldest sent first; since every
 * message to a worker goes over its one port in order, the record here is
 * exactly what the worker holds when the next task arrives. An image the
 * host stops using (a version replaced or deleted, the image a snapshot was
 * taken from) is retired on both sides at once; tasks for it that were
 * still queued carry it whole under UNKEPT.
 */

import type { FunctionImage } from "../runtime/types.ts";
import { IMAGES_PER_WORKER, UNKEPT } from "../worker/kept-images.ts";

export class SentImages {
  readonly #ids = new WeakMap<FunctionImage, number>();
  readonly #retired = new WeakSet<FunctionImage>();
  #next = UNKEPT + 1;
  /** Per worker (by slot), the ids it holds, oldest sent first. */
  readonly #held = new Map<number, Set<number>>();

  /** The image's id; UNKEPT once it is retired. */
  idOf(image: FunctionImage): number {
    if (this.#retired.has(image)) return UNKEPT;
    let id = this.#ids.get(image);
    if (id === undefined) {
      id = this.#next++;
      this.#ids.set(image, id);
    }
    return id;
  }

  /**
   * Whether `worker` holds image `id` now. When it does not, it will once
   * the task about to be posted reaches it: that task carries the image.
   */
  holds(worker: number, id: number): boolean {
    if (id === UNKEPT) return false;
    let held = this.#held.get(worker);
    if (!held) {
      held = new Set();
      this.#held.set(worker, held);
    }
    if (held.has(id)) return true;
    held.add(id);
    if (held.size > IMAGES_PER_WORKER) held.delete(held.values().next().value as number);
    return false;
  }

  /** A worker was replaced: its successor holds nothing. */
  reset(worker: number): void {
    this.#held.delete(worker);
  }

  /** Retires an image: the workers that hold it (to be told) and its id; none if it was never sent. */
  retire(image: FunctionImage): { id: number; workers: number[] } | undefined {
    this.#retired.add(image);
    const id = this.#ids.get(image);
    if (id === undefined) return undefined;
    const workers: number[] = [];
    for (const [worker, held] of this.#held) if (held.delete(id)) workers.push(worker);
    return { id, workers };
  }
}
