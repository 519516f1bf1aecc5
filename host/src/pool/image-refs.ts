/**
 * Function images by reference. A task used to carry its function's whole
 * image (core modules, paths, grants, env): structured-cloning it cost the
 * main thread 10–30 µs and the answer 30–40 µs on every request (measured
 * by adding an image to the task of the bench's fastify + piscina row).
 * Now a worker keeps the images it was sent, and a task carries its image
 * only to a worker that does not hold it yet.
 *
 * Each image object gets an id on the main thread, so a new image of the
 * same version (the one a deploy-time snapshot makes) is a new id. Both
 * sides hold at most IMAGES_PER_WORKER per worker, dropping the oldest sent
 * first: the main thread records an image when it sends it, the worker when
 * it receives it, over the one port piscina posts that worker's tasks on,
 * so both sides drop the same ones. An image the host stops using (a
 * version replaced or deleted, the image a snapshot was taken from) is
 * retired at once on both sides, so that workers do not keep a deleted
 * function's compiled modules alive; requests for it that were still
 * queued carry it under id 0, and a task that carries a retired id arrives
 * after its retirement, both run and neither kept. Should the two sides
 * ever disagree (a retirement crossing a task in flight), the worker
 * answers IMAGE_WANTED and the scheduler sends the task again, with the
 * image.
 */
import type { FunctionImage } from "../runtime/types.ts";

export const IMAGES_PER_WORKER = 256;

/** A worker's answer to a task that names an image it does not hold. */
export const IMAGE_WANTED = "joule:image-wanted";
export type ImageWanted = { [IMAGE_WANTED]: true };

export function isImageWanted(result: object): result is ImageWanted {
  return IMAGE_WANTED in result;
}

/** The id of an image that is sent whole and not kept: a retired one. */
export const UNKEPT = 0;

/** The main thread's side: image ids, and which ones each worker holds. */
export class SentImages {
  readonly #ids = new WeakMap<FunctionImage, number>();
  readonly #retired = new WeakSet<FunctionImage>();
  #next = 1;
  readonly #held = new Map<number, Set<number>>();
  /** The thread ids of the pool's live workers: a new one means old ones may have gone. */
  readonly #live: () => ReadonlySet<number>;

  constructor(live: () => ReadonlySet<number>) {
    this.#live = live;
  }

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

  /** Whether `worker` holds image `id`; when it does not, it will once this task reaches it. */
  holds(worker: number, id: number): boolean {
    if (id === UNKEPT) return false;
    let held = this.#held.get(worker);
    if (!held) {
      // A worker not seen before replaces one that exited (whose thread id piscina no longer knows).
      const live = this.#live();
      for (const known of this.#held.keys()) if (!live.has(known)) this.#held.delete(known);
      held = new Set();
      this.#held.set(worker, held);
    }
    if (held.has(id)) return true;
    held.add(id);
    if (held.size > IMAGES_PER_WORKER) held.delete(held.values().next().value as number);
    return false;
  }

  /** The worker said it lacks `id`: the retry carries it. */
  lost(worker: number, id: number): void {
    this.#held.get(worker)?.delete(id);
  }

  /** The id of an image no task will name again, now held by no worker; undefined if none was sent. */
  retire(image: FunctionImage): number | undefined {
    this.#retired.add(image);
    const id = this.#ids.get(image);
    if (id === undefined) return undefined;
    for (const held of this.#held.values()) held.delete(id);
    return id;
  }
}

/** The worker's side: the images it was sent, by id. */
export class KeptImages {
  readonly #kept = new Map<number, FunctionImage>();
  /**
   * Ids retired here, the newest RETIRED_REMEMBERED: a task that carries one
   * (posted before the retirement, arriving after it) is run and not kept.
   */
  readonly #retired = new Set<number>();

  /** The task's image: the one it carries (kept from now on), or the one kept under its id. */
  imageFor(id: number, carried: FunctionImage | undefined): FunctionImage | undefined {
    if (!carried) return this.#kept.get(id);
    if (id === UNKEPT || this.#retired.has(id)) return carried;
    this.#kept.delete(id);
    this.#kept.set(id, carried);
    if (this.#kept.size > IMAGES_PER_WORKER) this.#kept.delete(this.#kept.keys().next().value as number);
    return carried;
  }

  /** The main thread retired the image (SentImages.retire). */
  forget(id: number): void {
    this.#kept.delete(id);
    this.#retired.add(id);
    if (this.#retired.size > RETIRED_REMEMBERED) this.#retired.delete(this.#retired.values().next().value as number);
  }
}

const RETIRED_REMEMBERED = 4096;
