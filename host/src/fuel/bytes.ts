/**
 * Byte-level reading and writing of the WebAssembly binary format: LEB128
 * integers, names, vectors. The reader throws FuelError on truncated or
 * overlong input; the writer grows as needed.
 */
import { FuelError } from "./fuel-error.ts";

export class Reader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  byte(): number {
    if (this.pos >= this.end) throw new FuelError("malformed", `unexpected end of input at byte ${this.pos}`);
    return this.bytes[this.pos++] as number;
  }

  peek(): number {
    if (this.pos >= this.end) throw new FuelError("malformed", `unexpected end of input at byte ${this.pos}`);
    return this.bytes[this.pos] as number;
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end)
      throw new FuelError("malformed", `unexpected end of input at byte ${this.pos}`);
    this.pos += n;
  }

  /** Unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    throw new FuelError("malformed", `integer too long at byte ${this.pos}`);
  }

  /** Skips a signed or unsigned LEB128 of at most `maxBytes` bytes. */
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) if ((this.byte() & 0x80) === 0) return;
    throw new FuelError("malformed", `integer too long at byte ${this.pos}`);
  }

  /** Signed LEB128 up to 33 bits (block types), as a JS number. */
  s33(): number {
    let result = 0;
    let shift = 0;
    let b: number;
    let i = 0;
    do {
      if (i++ >= 5) throw new FuelError("malformed", `integer too long at byte ${this.pos}`);
      b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    if (b & 0x40) result -= 2 ** shift;
    return result;
  }

  /** Signed LEB128 of at most 64 bits, as a bigint. */
  s64(): bigint {
    let result = 0n;
    let shift = 0n;
    let b: number;
    let i = 0;
    do {
      if (i++ >= 10) throw new FuelError("malformed", `integer too long at byte ${this.pos}`);
      b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    } while (b & 0x80);
    if (b & 0x40) result -= 1n << shift;
    return result;
  }

  name(): string {
    const length = this.u32();
    const start = this.pos;
    this.skip(length);
    return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(start, start + length));
  }
}

export class Writer {
  #buf: Uint8Array;
  length = 0;

  constructor(capacity = 1024) {
    this.#buf = new Uint8Array(capacity);
  }

  #ensure(extra: number): void {
    if (this.length + extra <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
  }

  byte(b: number): void {
    this.#ensure(1);
    this.#buf[this.length++] = b;
  }

  bytes(data: Uint8Array): void {
    this.#ensure(data.length);
    this.#buf.set(data, this.length);
    this.length += data.length;
  }

  u32(value: number): void {
    let v = value >>> 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
  }

  s64(value: bigint): void {
    let v = value;
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return;
    }
  }

  name(value: string): void {
    const encoded = new TextEncoder().encode(value);
    this.u32(encoded.length);
    this.bytes(encoded);
  }

  /** Appends `inner` prefixed with its length (a section or a function body). */
  sized(inner: Writer): void {
    this.u32(inner.length);
    this.bytes(inner.result());
  }

  result(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }

  /** Empties the writer, keeping its buffer. */
  clear(): void {
    this.length = 0;
  }
}
