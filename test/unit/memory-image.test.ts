import { describe, expect, it } from "vitest";
import type { MemoryImage } from "../../host/src/fuel/instrument.ts";
import { applyImage, coalesce, decodeImage, encodeImage } from "../../host/src/runtime/memory-image.ts";

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
});
