/**
 * A module's data, split off at deploy (see `splitData` in fuel/instrument.ts)
 * so that its code is shared: a list of segments written into the
 * instance's memory right after instantiation, as active data segments
 * would have been. Stored as: u32 count, then per segment u32 offset,
 * u32 length, bytes (little-endian).
 */
import type { MemoryImage } from "../fuel/instrument.ts";

export function encodeImage(image: MemoryImage): Uint8Array {
  const size = 4 + image.segments.reduce((n, s) => n + 8 + s.bytes.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, image.segments.length, true);
  let at = 4;
  for (const { offset, bytes } of image.segments) {
    view.setUint32(at, offset, true);
    view.setUint32(at + 4, bytes.length, true);
    out.set(bytes, at + 8);
    at += 8 + bytes.length;
  }
  return out;
}

export function decodeImage(data: Uint8Array): MemoryImage {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(0, true);
  const segments: MemoryImage["segments"] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const offset = view.getUint32(at, true);
    const length = view.getUint32(at + 4, true);
    if (at + 8 + length > data.length) throw new Error("memory image is truncated");
    segments.push({ offset, bytes: data.subarray(at + 8, at + 8 + length) });
    at += 8 + length;
  }
  return { segments };
}

/** Writes the image into memory; out of bounds fails as an active segment would at instantiation. */
export function applyImage(memory: WebAssembly.Memory, image: MemoryImage): void {
  const target = new Uint8Array(memory.buffer);
  for (const { offset, bytes } of image.segments) {
    if (offset + bytes.length > target.length) throw new WebAssembly.RuntimeError("data segment is out of bounds");
    target.set(bytes, offset);
  }
}
