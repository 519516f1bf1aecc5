/**
 * Splits a blob into streams that chunk well, and joins them back byte for
 * byte. A JS function's heap lives in its main core module's data section
 * as ~10,000 small segments, each behind a few header bytes; its memory
 * image holds the same bytes behind other headers. Interleaved with
 * headers, the two never share a chunk; split into
 *
 *   skeleton  the blob without its data segments (the engine: the same for every JS function)
 *   headers   each segment's header bytes, in order
 *   payload   each segment's bytes, in order (the heap: the same in the component and its image)
 *
 * the payload of a component and of its image chunk identically and are
 * stored once. `splits` says where in the skeleton a run of segments goes
 * back, and how many. Anything the parser does not understand is left in
 * the skeleton: splitting is an optimization, never a requirement.
 */

export type SplitKind = "wasm" | "image";

export interface Split {
  kind: SplitKind;
  skeleton: Uint8Array;
  headers: Uint8Array;
  payload: Uint8Array;
  /** [offset in the skeleton, number of segments], in order. */
  splits: Array<[number, number]>;
}

const COMPONENT = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const CORE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

class Cursor {
  pos: number;
  readonly bytes: Uint8Array;
  readonly end: number;
  constructor(bytes: Uint8Array, pos: number, end: number) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }
  byte(): number {
    if (this.pos >= this.end) throw new RangeError("truncated");
    return this.bytes[this.pos++] as number;
  }
  uleb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new RangeError("LEB too long");
    }
  }
  skipLeb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw new RangeError("LEB too long");
  }
}

/** Reads one data segment's header at `c`; returns the payload size. Throws on what it does not know. */
function dataHeader(c: Cursor): number {
  const flags = c.uleb();
  if (flags === 2) c.uleb();
  if (flags === 0 || flags === 2) {
    // A constant expression: the opcodes constant offsets use, up to `end`.
    for (;;) {
      const op = c.byte();
      if (op === 0x0b) break;
      if (op === 0x41 || op === 0x42 || op === 0x23) c.skipLeb();
      else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) throw new RangeError(`opcode ${op}`);
    }
  } else if (flags !== 1) throw new RangeError(`segment flags ${flags}`);
  return c.uleb();
}

/** A memory image's segment header (runtime/memory-image.ts): u32 offset, u32 length. */
function imageHeader(c: Cursor): number {
  if (c.pos + 8 > c.end) throw new RangeError("truncated");
  const length = new DataView(c.bytes.buffer, c.bytes.byteOffset + c.pos + 4, 4).getUint32(0, true);
  c.pos += 8;
  return length;
}

interface Cut {
  /** Where the segments start and end in the original. */
  start: number;
  end: number;
  count: number;
}

function startsWith(bytes: Uint8Array, at: number, prefix: number[]): boolean {
  return prefix.every((b, i) => bytes[at + i] === b);
}

/** Finds the data sections of every core module in a component or module at [start, end). */
function findCuts(bytes: Uint8Array, start: number, end: number, cuts: Cut[]): void {
  const component = startsWith(bytes, start, COMPONENT);
  if (!component && !startsWith(bytes, start, CORE)) return;
  const c = new Cursor(bytes, start + 8, end);
  while (c.pos < end) {
    const id = c.byte();
    const size = c.uleb();
    const body = c.pos;
    const bodyEnd = body + size;
    if (bodyEnd > end) return;
    if (component && (id === 1 || id === 4)) findCuts(bytes, body, bodyEnd, cuts);
    else if (!component && id === 11) {
      try {
        const s = new Cursor(bytes, body, bodyEnd);
        const count = s.uleb();
        const first = s.pos;
        for (let i = 0; i < count; i++) {
          const length = dataHeader(s);
          s.pos += length;
        }
        if (s.pos === bodyEnd && count > 0) cuts.push({ start: first, end: bodyEnd, count });
      } catch {
        // Not understood: stays in the skeleton.
      }
    }
    c.pos = bodyEnd;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function split(bytes: Uint8Array, kind: SplitKind, cuts: Cut[]): Split {
  const header = kind === "wasm" ? dataHeader : imageHeader;
  const skeleton: Uint8Array[] = [];
  const headers: Uint8Array[] = [];
  const payload: Uint8Array[] = [];
  const splits: Array<[number, number]> = [];
  let from = 0;
  let skeletonLength = 0;
  for (const cut of cuts) {
    skeleton.push(bytes.subarray(from, cut.start));
    skeletonLength += cut.start - from;
    splits.push([skeletonLength, cut.count]);
    const c = new Cursor(bytes, cut.start, cut.end);
    for (let i = 0; i < cut.count; i++) {
      const at = c.pos;
      const size = header(c);
      headers.push(bytes.subarray(at, c.pos));
      payload.push(bytes.subarray(c.pos, c.pos + size));
      c.pos += size;
    }
    from = cut.end;
  }
  skeleton.push(bytes.subarray(from));
  return { kind, skeleton: concat(skeleton), headers: concat(headers), payload: concat(payload), splits };
}

/** The streams of a component or core module; a blob with no data segments splits into its skeleton alone. */
export function splitWasm(bytes: Uint8Array): Split {
  const cuts: Cut[] = [];
  findCuts(bytes, 0, bytes.byteLength, cuts);
  return split(bytes, "wasm", cuts);
}

/** The streams of a memory image (u32 count, then u32 offset, u32 length, bytes per segment). */
export function splitImage(bytes: Uint8Array): Split {
  if (bytes.byteLength < 4) return split(bytes, "image", []);
  const count = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  try {
    const c = new Cursor(bytes, 4, bytes.byteLength);
    for (let i = 0; i < count; i++) {
      const length = imageHeader(c);
      c.pos += length;
    }
    if (c.pos !== bytes.byteLength) return split(bytes, "image", []);
  } catch {
    return split(bytes, "image", []);
  }
  return split(bytes, "image", count > 0 ? [{ start: 4, end: bytes.byteLength, count }] : []);
}

/** Puts the streams back together: the exact bytes that were split. */
export function joinSplit(parts: Omit<Split, "kind"> & { kind: SplitKind }, size: number): Uint8Array {
  const header = parts.kind === "wasm" ? dataHeader : imageHeader;
  const out = new Uint8Array(size);
  const h = new Cursor(parts.headers, 0, parts.headers.byteLength);
  let at = 0;
  let skeletonAt = 0;
  let payloadAt = 0;
  const copy = (from: Uint8Array, start: number, end: number) => {
    if (end > from.byteLength || at + (end - start) > size) throw new RangeError("split streams do not fit");
    out.set(from.subarray(start, end), at);
    at += end - start;
  };
  for (const [offset, count] of parts.splits) {
    copy(parts.skeleton, skeletonAt, offset);
    skeletonAt = offset;
    for (let i = 0; i < count; i++) {
      const headerStart = h.pos;
      const length = header(h);
      copy(parts.headers, headerStart, h.pos);
      copy(parts.payload, payloadAt, payloadAt + length);
      payloadAt += length;
    }
  }
  copy(parts.skeleton, skeletonAt, parts.skeleton.byteLength);
  if (at !== size) throw new RangeError("split streams do not add up");
  return out;
}
