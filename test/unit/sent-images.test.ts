import { beforeEach, describe, expect, it } from "vitest";
import { SentImages } from "../../host/src/pool/sent-images.ts";
import type { FunctionImage } from "../../host/src/runtime/types.ts";
import { IMAGES_PER_WORKER, KeptImages, UNKEPT } from "../../host/src/worker/kept-images.ts";

const image = (name: string) => ({ name }) as unknown as FunctionImage;
const sentImages = () => new SentImages();

// The worker's side, fresh for each test.
let kept: KeptImages;
beforeEach(() => {
  kept = new KeptImages();
});

describe("function images by reference", () => {
  it("gives each image object its own id, so a new image of one version is sent anew", () => {
    const sent = sentImages();
    const a = image("a");
    expect(sent.idOf(a)).toBe(sent.idOf(a));
    expect(sent.idOf(image("a"))).not.toBe(sent.idOf(a));
  });

  it("sends an image to each worker once, and the worker finds it by id afterwards", () => {
    const sent = sentImages();
    const a = image("a");
    const id = sent.idOf(a);
    expect(sent.holds(1, id)).toBe(false);
    expect(kept.imageFor(id, a)).toBe(a); // the task that carried it
    expect(sent.holds(1, id)).toBe(true);
    expect(kept.imageFor(id, undefined)).toBe(a); // a task by reference
    expect(sent.holds(2, id)).toBe(false); // another worker gets it too
  });

  it("drops the oldest sent first on both sides, so they agree on what a worker holds", () => {
    const sent = sentImages();
    const images = Array.from({ length: IMAGES_PER_WORKER + 1 }, (_, i) => image(`f${i}`));
    for (const each of images) {
      const id = sent.idOf(each);
      if (!sent.holds(7, id)) kept.imageFor(id, each);
    }
    for (const [i, each] of images.entries()) {
      const id = sent.idOf(each);
      const held = kept.imageFor(id, undefined) !== undefined;
      expect(held, `image ${i}`).toBe(i > 0);
    }
    expect(sent.holds(7, sent.idOf(images[0] as FunctionImage))).toBe(false);
  });

  it("retires an image on both sides; requests still queued for it carry it, and no worker keeps it", () => {
    const sent = sentImages();
    const a = image("a");
    const id = sent.idOf(a);
    sent.holds(3, id);
    kept.imageFor(id, a);
    expect(sent.retire(a)).toEqual({ id, workers: [3] });
    kept.forget(id);
    expect(kept.imageFor(id, undefined)).toBeUndefined();
    expect(sent.holds(3, id)).toBe(false);
    expect(sent.idOf(a)).toBe(UNKEPT);
    expect(sent.holds(3, UNKEPT)).toBe(false);
    expect(sent.holds(3, UNKEPT)).toBe(false);
    expect(kept.imageFor(UNKEPT, a)).toBe(a);
    expect(kept.imageFor(UNKEPT, undefined)).toBeUndefined();
    expect(sent.retire(image("never sent"))).toBeUndefined();
  });

  it("forgets what a replaced worker held", () => {
    const sent = sentImages();
    const id = sent.idOf(image("a"));
    sent.holds(1, id);
    expect(sent.holds(1, id)).toBe(true);
    sent.reset(1);
    expect(sent.holds(1, id)).toBe(false);
  });
});
