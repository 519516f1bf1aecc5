import { describe, expect, it } from "vitest";
import { forgetImage, IMAGES_PER_WORKER, imageFor, SentImages } from "../../host/src/pool/image-refs.ts";
import type { FunctionImage } from "../../host/src/runtime/types.ts";

const image = (name: string) => ({ name }) as unknown as FunctionImage;

describe("function images by reference", () => {
  it("gives each image object its own id, so a new image of one version is sent anew", () => {
    const sent = new SentImages();
    const a = image("a");
    expect(sent.idOf(a)).toBe(sent.idOf(a));
    expect(sent.idOf(image("a"))).not.toBe(sent.idOf(a));
  });

  it("sends an image to each worker once, and the worker finds it by id afterwards", () => {
    const sent = new SentImages();
    const a = image("a");
    const id = sent.idOf(a);
    expect(sent.holds(1, id)).toBe(false);
    expect(imageFor(id, a)).toBe(a); // the task that carried it
    expect(sent.holds(1, id)).toBe(true);
    expect(imageFor(id, undefined)).toBe(a); // a task by reference
    expect(sent.holds(2, id)).toBe(false); // another worker gets it too
  });

  it("drops the oldest sent first on both sides, so they agree on what a worker holds", () => {
    const sent = new SentImages();
    const images = Array.from({ length: IMAGES_PER_WORKER + 1 }, (_, i) => image(`f${i}`));
    for (const each of images) {
      const id = sent.idOf(each);
      if (!sent.holds(7, id)) imageFor(id, each);
    }
    for (const [i, each] of images.entries()) {
      const id = sent.idOf(each);
      const held = imageFor(id, undefined) !== undefined;
      expect(held, `image ${i}`).toBe(i > 0);
    }
    expect(sent.holds(7, sent.idOf(images[0] as FunctionImage))).toBe(false);
  });

  it("retires an image on both sides; a worker that lacks one gets it again", () => {
    const sent = new SentImages();
    const a = image("a");
    const id = sent.idOf(a);
    sent.holds(3, id);
    imageFor(id, a);
    expect(sent.retire(a)).toBe(id);
    forgetImage(id);
    expect(imageFor(id, undefined)).toBeUndefined();
    expect(sent.holds(3, id)).toBe(false);
    expect(sent.retire(image("never sent"))).toBeUndefined();
  });
});
