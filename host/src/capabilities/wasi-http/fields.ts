/**
 * wasi:http/types `fields`: HTTP headers and trailers as the guest builds
 * and reads them. Names are case-insensitive tokens (kept lower-case, as
 * HTTP/2 has them); values are bytes without CR, LF or NUL. Headers the
 * host sets itself or that would steer the connection (outbound-http.ts,
 * HOP_HEADERS: host, content-length, transfer-encoding, ...) are accepted,
 * as the guest engine copies them along, and never sent: the host writes
 * its own. The headers of a request once it holds them, and of a
 * response, are immutable.
 */
import { HOP_HEADERS } from "../outbound-http.ts";

/** The `header-error` variant: jco maps a thrown `{ tag }` to the `err` case. */
const INVALID = Object.freeze({ tag: "invalid-syntax" });
const IMMUTABLE = Object.freeze({ tag: "immutable" });

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** At most this many entries, and this many bytes in all: a guest must not make the host hold without bound. */
const MAX_ENTRIES = 256;
const MAX_BYTES = 64 * 1024;

function checkName(name: string): string {
  if (!TOKEN.test(name)) throw INVALID;
  return name.toLowerCase();
}

function checkValue(value: Uint8Array): Uint8Array {
  for (const byte of value) if (byte === 0x0a || byte === 0x0d || byte === 0) throw INVALID;
  return value;
}

export class Fields {
  #entries: Array<[string, Uint8Array]> = [];
  #immutable = false;

  static fromList(entries: Array<[string, Uint8Array]>): Fields {
    const fields = new Fields();
    for (const [name, value] of entries) fields.append(name, value);
    return fields;
  }

  /** Headers that came from outside (a response): never checked against the forbidden list, never changed. */
  static received(entries: Array<[string, Uint8Array]>): Fields {
    const fields = new Fields();
    fields.#entries = entries.map(([name, value]) => [name.toLowerCase(), value]);
    fields.#immutable = true;
    return fields;
  }

  /** From now on set, append and delete fail (a request's headers once the request holds them). */
  freeze(): Fields {
    this.#immutable = true;
    return this;
  }

  get(name: string): Uint8Array[] {
    const key = name.toLowerCase();
    return this.#entries.filter(([n]) => n === key).map(([, v]) => v);
  }

  has(name: string): boolean {
    const key = name.toLowerCase();
    return this.#entries.some(([n]) => n === key);
  }

  set(name: string, values: Uint8Array[]): void {
    const key = this.#writable(name);
    for (const value of values) checkValue(value);
    this.#entries = this.#entries.filter(([n]) => n !== key);
    for (const value of values) this.#add(key, value);
  }

  delete(name: string): void {
    const key = this.#writable(name);
    this.#entries = this.#entries.filter(([n]) => n !== key);
  }

  append(name: string, value: Uint8Array): void {
    this.#add(this.#writable(name), checkValue(value));
  }

  entries(): Array<[string, Uint8Array]> {
    return this.#entries.map(([n, v]) => [n, v]);
  }

  clone(): Fields {
    const copy = new Fields();
    copy.#entries = this.entries();
    return copy;
  }

  /** As Node's outgoing headers, without those the host sets itself: bytes as Latin-1. */
  toNode(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of this.#entries) {
      if (HOP_HEADERS.has(name)) continue;
      const text = Buffer.from(value).toString("latin1");
      const previous = out[name];
      if (previous === undefined) out[name] = text;
      else out[name] = Array.isArray(previous) ? [...previous, text] : [previous, text];
    }
    return out;
  }

  #writable(name: string): string {
    if (this.#immutable) throw IMMUTABLE;
    return checkName(name);
  }

  #add(name: string, value: Uint8Array): void {
    const bytes = this.#entries.reduce((n, [k, v]) => n + k.length + v.byteLength, 0);
    if (this.#entries.length >= MAX_ENTRIES || bytes + name.length + value.byteLength > MAX_BYTES) throw INVALID;
    this.#entries.push([name, new Uint8Array(value)]);
  }
}
