/**
 * The worker's side of images by reference (pool/sent-images.ts): the
 * function images it was sent, by id, at most IMAGES_PER_WORKER, the
 * oldest sent dropped first, exactly as the main thread drops them from
 * its record of this worker. Both sides see the same messages in the same
 * order on the worker's port, so they agree without asking.
 */
import type { FunctionImage } from "../runtime/types.ts";

export const IMAGES_PER_WORKER = 256;

/** The id of an image that is sent whole and not kept: a retired one. */
export const UNKEPT = 0;

export class KeptImages {
  readonly #kept = new Map<number, FunctionImage>();

  /** The task's image: the one it carries (kept from now on, unless UNKEPT), or the one kept under its id. */
  imageFor(id: number, carried: FunctionImage | undefined): FunctionImage | undefined {
    if (!carried) return this.#kept.get(id);
    if (id === UNKEPT) return carried;
    this.#kept.delete(id);
    this.#kept.set(id, carried);
    if (this.#kept.size > IMAGES_PER_WORKER) this.#kept.delete(this.#kept.keys().next().value as number);
    return carried;
  }

  /** The main thread retired the image. */
  forget(id: number): void {
    this.#kept.delete(id);
  }
}
