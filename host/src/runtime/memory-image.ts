/**
 * A module's data, split off at deploy (see `splitData` in fuel/instrument.ts)
 * so that its code is shared: a list of segments written into the
 * instance's memory right after instantiation, as active data segments
 * would have been. Stored as: u32 count, then per segment u32 offset,
 * u32 length, bytes (little-endian).
 */
import { hash } from "node:crypto";
import type { MemoryImage } from "../fuel/instrument.ts";

/**
 * Gaps up to this size between segments are filled with zeros and the
 * segments merged. Wizer-style images come as thousands of small segments,
 * and writing each costs more than copying the zeros between them (10,000
 * segments of the JS engine: 3.4 ms to apply; merged over 256-byte gaps:
 * 116 segments, 7% more bytes, 2.2 ms, most of it the first touch of pages).
 */
const MERGE_GAP_BYTES = 256;

/**
 * The same image in as few segments as gaps allow. Zeros in a gap change
 * nothing (memory starts zeroed); where segments overlap, the later one
 * wins, as when active segments are applied in order.
 */
export function coalesce(image: MemoryImage): MemoryImage {
  const order = image.segments.map((segment, index) => ({ ...segment, index }));
  order.sort((a, b) => a.offset - b.offset || a.index - b.index);
  const ranges: Array<{ start: number; end: number; members: typeof order }> = [];
  for (const segment of order) {
    const last = ranges.at(-1);
    const end = segment.offset + segment.bytes.length;
    if (last && segment.offset - last.end <= MERGE_GAP_BYTES) {
      last.end = Math.max(last.end, end);
      last.members.push(segment);
    } else ranges.push({ start: segment.offset, end, members: [segment] });
  }
  return {
    segments: ranges.map(({ start, end, members }) => {
      if (members.length === 1) return { offset: start, bytes: (members[0] as (typeof members)[0]).bytes };
      const bytes = new Uint8Array(end - start);
      members.sort((a, b) => a.index - b.index);
      for (const member of members) bytes.set(member.bytes, member.offset - start);
      return { offset: start, bytes };
    }),
  };
}

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

/** The page of images and snapshots: what the kernel maps, smaller than Wasm's 64 KiB. */
export const PAGE = 4096;

/**
 * An image as the 4 KiB pages of memory it writes (zeros where no segment
 * covers part of one), each with its SHA-256. A cryptographic digest,
 * because pages of two functions' images are taken as equal when their
 * digests are: a collision would leave one function's bytes in another's
 * memory.
 */
export interface PagedImage {
  pages: ReadonlyMap<number, { bytes: Uint8Array; digest: string }>;
  /** Where the image's last segment ends: past the memory's end fails, as an active segment would. */
  end: number;
  /** Bytes held besides the image's own: the pages assembled from parts. */
  copied: number;
}

/** What memory holds of a paged image: page → digest. */
export type WrittenPages = ReadonlyMap<number, string>;

/** Pages digested per step of `pagingSteps`: 4 MiB, about 3.5 ms here. */
export const PAGES_PER_STEP = 1024;

/**
 * The image as pages, or undefined when assembling its partly covered
 * pages would hold more than the image itself (thousands of small segments
 * far apart): such an image is written as it is.
 */
export function pagesOf(image: MemoryImage): PagedImage | undefined {
  const steps = pagingSteps(image);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * `pagesOf` in steps, one per PAGES_PER_STEP pages digested: the largest
 * image (256 MiB) takes about 215 ms to digest, too long to hold a worker
 * in one turn of its event loop (image-cache.ts runs a step per turn).
 */
export function* pagingSteps(image: MemoryImage): Generator<void, PagedImage | undefined> {
  const bytesOf = new Map<number, Uint8Array>();
  /** Pages assembled in a copy of their own: partly covered, or covered by more than one segment. */
  const copies = new Set<number>();
  let size = 0;
  let end = 0;
  for (const { offset, bytes } of image.segments) {
    size += bytes.length;
    end = Math.max(end, offset + bytes.length);
    for (let page = Math.floor(offset / PAGE); page * PAGE < offset + bytes.length; page++) {
      const from = Math.max(offset, page * PAGE);
      const to = Math.min(offset + bytes.length, (page + 1) * PAGE);
      if (from === page * PAGE && to === (page + 1) * PAGE && !bytesOf.has(page)) {
        bytesOf.set(page, bytes.subarray(from - offset, to - offset));
        continue;
      }
      let assembled = bytesOf.get(page);
      if (!assembled || !copies.has(page)) {
        if ((copies.size + 1) * PAGE > Math.max(size, 64 * PAGE)) return undefined;
        const copy = new Uint8Array(PAGE);
        if (assembled) copy.set(assembled);
        assembled = copy;
        bytesOf.set(page, copy);
        copies.add(page);
      }
      // Where segments overlap, the later one wins, as when active segments are applied in order.
      assembled.set(bytes.subarray(from - offset, to - offset), from - page * PAGE);
    }
  }
  const pages = new Map<number, { bytes: Uint8Array; digest: string }>();
  for (const [page, bytes] of bytesOf) {
    pages.set(page, { bytes, digest: hash("sha256", bytes, "base64") });
    if (pages.size % PAGES_PER_STEP === 0 && pages.size < bytesOf.size) yield;
  }
  return { pages, end, copied: copies.size * PAGE };
}

/** Writes a paged image into fresh (zeroed) memory, the pages that fit; returns those written. */
export function applyPages(memory: WebAssembly.Memory, image: PagedImage): WrittenPages {
  const target = new Uint8Array(memory.buffer);
  const written = new Map<number, string>();
  for (const [page, { bytes, digest }] of image.pages) {
    if ((page + 1) * PAGE > target.length) continue;
    target.set(bytes, page * PAGE);
    written.set(page, digest);
  }
  return written;
}

/**
 * Makes memory that holds `base` (written by applyPages, nothing since)
 * hold exactly `image`: the pages whose digests differ are written, and
 * the pages of `base` that `image` lacks are zeroed. Two versions of one
 * function share all but a few pages, two JS functions of one engine about
 * two thirds. Out of bounds fails as an active segment would.
 */
export function applyOver(memory: WebAssembly.Memory, image: PagedImage, base: WrittenPages): void {
  const target = new Uint8Array(memory.buffer);
  if (image.end > target.length) throw new WebAssembly.RuntimeError("data segment is out of bounds");
  for (const [page, { bytes, digest }] of image.pages) {
    if (base.get(page) !== digest) target.set(bytes, page * PAGE);
  }
  for (const page of base.keys()) if (!image.pages.has(page)) target.fill(0, page * PAGE, (page + 1) * PAGE);
}

/** Zeroes the pages `base` wrote: what memory holds of no image. */
export function clearPages(memory: WebAssembly.Memory, base: WrittenPages): void {
  const target = new Uint8Array(memory.buffer);
  for (const page of base.keys()) target.fill(0, page * PAGE, (page + 1) * PAGE);
}
