import { describe, expect, it } from "vitest";
import type { MemoryImage } from "../../host/src/fuel/instrument.ts";
import {
  applyImage,
  applyImageOver,
  applyOver,
  applyPages,
  coalesce,
  decodeImage,
  encodeImage,
  pagesOf,
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

    it("leave memory exactly as the image alone would, none of the first one's bytes", () => {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const base = applyPages(memory, pagesOf(a));
      expect(new Uint8Array(memory.buffer)).toEqual(written(a));
      applyOver(memory, pagesOf(b), base);
      expect(new Uint8Array(memory.buffer)).toEqual(written(b));

      const unpaged = new WebAssembly.Memory({ initial: 1 });
      applyImageOver(unpaged, b, applyPages(unpaged, pagesOf(a)));
      expect(new Uint8Array(unpaged.buffer)).toEqual(written(b));
    });

    it("write only the pages whose digests differ", () => {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const base = applyPages(memory, pagesOf(a));
      const view = new Uint8Array(memory.buffer);
      view[100] = 9; // in page 0, which both images hold alike: left alone
      applyOver(memory, pagesOf(b), base);
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
      expect([...applyPages(memory, pagesOf(far)).keys()]).toEqual([0]);
      expect(() => applyOver(memory, pagesOf(far), new Map())).toThrow(WebAssembly.RuntimeError);
    });
  });
});
