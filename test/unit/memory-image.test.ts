import { describe, expect, it } from "vitest";
import type { MemoryImage } from "../../host/src/fuel/instrument.ts";
import {
  applyImage,
  applyOver,
  applyPages,
  clearPages,
  coalesce,
  decodeImage,
  encodeImage,
  PAGES_PER_STEP,
  pagesOf,
  pagingSteps,
} from "../../host/src/runtime/memory-image.ts";

/** Memory as the segments leave it, applied the way active data segments are: in order. */
function written(image: MemoryImage): Uint8Array {
  const memory = new WebAssembly.Memory({ initial: 1 });
  applyImage(memory, image);
  return new Uint8Array(memory.buffer);
}

const bytes = (...values: number[]) => new Uint8Array(values);

describe("memory images", () => {
  it("merge segments separated by small gaps and leave far ones apart", () => {
    const image = {
      segments: [
        { offset: 10, bytes: bytes(1, 2) },
        { offset: 100, bytes: bytes(3) },
        { offset: 5000, bytes: bytes(4) },
      ],
    };
    const merged = coalesce(image);
    expect(merged.segments.map((s) => [s.offset, s.bytes.length])).toEqual([
      [10, 91],
      [5000, 1],
    ]);
    expect(written(merged)).toEqual(written(image));
  });

  it("keep the later segment's bytes where segments overlap, whatever their offsets", () => {
    const image = {
      segments: [
        { offset: 20, bytes: bytes(9, 9, 9) },
        { offset: 18, bytes: bytes(1, 1, 1, 1) },
        { offset: 21, bytes: bytes(7) },
      ],
    };
    const merged = coalesce(image);
    expect(merged.segments).toHaveLength(1);
    expect(written(merged)).toEqual(written(image));
    expect([...written(merged).subarray(18, 23)]).toEqual([1, 1, 1, 7, 9]);
  });

  it("round-trip through their stored form, and refuse a segment past the memory's end", () => {
    const image = coalesce({ segments: [{ offset: 3, bytes: bytes(5, 6) }] });
    expect(decodeImage(encodeImage(image))).toEqual(image);
    expect(() => written({ segments: [{ offset: 65535, bytes: bytes(1, 2) }] })).toThrow(WebAssembly.RuntimeError);
  });

  describe("written over another image", () => {
    // Pages 0-3: A and B agree on page 0, differ on 1, A alone has 2, B alone has 3, segments cross pages.
    const a: MemoryImage = {
      segments: [
        { offset: 0, bytes: new Uint8Array(4096).fill(1) },
        { offset: 8000, bytes: new Uint8Array(300).fill(2) },
        { offset: 8192 + 17, bytes: bytes(3, 3) },
      ],
    };
    const b: MemoryImage = {
      segments: [
        { offset: 0, bytes: new Uint8Array(4096).fill(1) },
        { offset: 4096, bytes: bytes(4) },
        { offset: 12288 + 5, bytes: bytes(5) },
      ],
    };

    const paged = (image: MemoryImage) => pagesOf(image) ?? expect.fail("not pageable");

    it("leave memory exactly as the image alone would, none of the first one's bytes", () => {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const base = applyPages(memory, paged(a));
      expect(new Uint8Array(memory.buffer)).toEqual(written(a));
      applyOver(memory, paged(b), base);
      expect(new Uint8Array(memory.buffer)).toEqual(written(b));

      const cleared = new WebAssembly.Memory({ initial: 1 });
      clearPages(cleared, applyPages(cleared, paged(a)));
      expect(new Uint8Array(cleared.buffer)).toEqual(new Uint8Array(65536));
    });

    it("take a later whole page over an earlier partial one, as segments applied in order do", () => {
      const image = {
        segments: [
          { offset: 10, bytes: bytes(7) },
          { offset: 0, bytes: new Uint8Array(4096).fill(6) },
        ],
      };
      const memory = new WebAssembly.Memory({ initial: 1 });
      applyOver(memory, paged(image), new Map());
      expect(new Uint8Array(memory.buffer)).toEqual(written(image));
    });

    it("are digested a step at a time, so a large image does not hold a worker for one long turn", () => {
      const pages = 2 * PAGES_PER_STEP + 10;
      const large = new Uint8Array(pages * 4096);
      for (let i = 0; i < large.length; i += 4096) large[i] = (i / 4096) % 251;
      const image = { segments: [{ offset: 0, bytes: large }] };
      const steps = pagingSteps(image);
      let yields = 0;
      let step = steps.next();
      for (; !step.done; step = steps.next()) yields++;
      expect(yields).toBe(2);
      const whole = paged(image);
      expect(step.value?.pages.size).toBe(pages);
      expect([...(step.value?.pages ?? [])].map(([page, p]) => [page, p.digest])).toEqual(
        [...whole.pages].map(([page, p]) => [page, p.digest]),
      );
    });

    it("leave as they are images whose pages would cost more than the image (many small segments)", () => {
      const sparse = { segments: Array.from({ length: 200 }, (_, i) => ({ offset: i * 8192, bytes: bytes(1) })) };
      expect(pagesOf(sparse)).toBeUndefined();
    });

    it("write only the pages whose digests differ", () => {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const base = applyPages(memory, paged(a));
      const view = new Uint8Array(memory.buffer);
      view[100] = 9; // in page 0, which both images hold alike: left alone
      applyOver(memory, paged(b), base);
      expect(view[100]).toBe(9);
      expect(view[4096]).toBe(4);
    });

    it("hold only the pages that fit, and refuse an image past the memory's end", () => {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const far: MemoryImage = {
        segments: [
          { offset: 65536, bytes: bytes(1) },
          { offset: 8, bytes: bytes(2) },
        ],
      };
      expect([...applyPages(memory, paged(far)).keys()]).toEqual([0]);
      expect(() => applyOver(memory, paged(far), new Map())).toThrow(WebAssembly.RuntimeError);
      // An empty segment past the end fails too, as an active data segment does.
      const empty = { segments: [{ offset: 70000, bytes: bytes() }] };
      expect(() => applyOver(memory, paged(empty), new Map())).toThrow(WebAssembly.RuntimeError);
      expect(() => written(empty)).toThrow(WebAssembly.RuntimeError);
    });
  });
});
