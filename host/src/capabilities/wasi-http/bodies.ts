/**
 * Bodies of outbound requests and their responses as wasi:io streams.
 *
 * A response body is read as it arrives: `read` takes what has come (maybe
 * nothing yet) without waiting, `subscribe` is ready once there is more or
 * it ended, and `blocking-read` suspends the guest (not the worker) until
 * then. The upstream is paused while the guest has not read what came, so
 * a slow reader holds back the sender instead of filling the host's memory;
 * what the invocation may read in all is bounded (limits.outbound).
 *
 * A request body is taken as the guest writes it, bounded the same way,
 * and handed to the connection once it is open.
 */
import type { IncomingMessage } from "node:http";
import { EventPollable, InputStream, IoError, type IoScope, OutputStream, type Pollable } from "../io.ts";

const CLOSED = Object.freeze({ tag: "closed" });

function failed(message: string) {
  return { tag: "last-operation-failed", val: new IoError(message) };
}

/** Unread bytes past which the upstream is paused. */
const PAUSE_AT = 256 * 1024;

export class ResponseBodyStream extends InputStream {
  readonly #scope: IoScope;
  readonly #message: IncomingMessage;
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  #received = 0;
  #ended = false;
  #error: string | undefined;
  #waiters: Array<() => void> = [];
  readonly #account: (bytes: number) => boolean;
  readonly #onDone: () => void;

  /** `account` counts what arrives against the invocation's bound; `onDone` once the body ended, failed or was dropped. */
  constructor(scope: IoScope, message: IncomingMessage, account: (bytes: number) => boolean, onDone: () => void) {
    super();
    this.#scope = scope;
    this.#message = message;
    this.#account = account;
    this.#onDone = onDone;
    message.on("data", (chunk: Buffer) => {
      this.#received += chunk.byteLength;
      if (!this.#account(chunk.byteLength)) {
        this.#fail("the response body is over limits.outbound.responseBytes");
        message.destroy();
        return;
      }
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
      if (this.#buffered >= PAUSE_AT) message.pause();
      this.#wake();
    });
    message.on("end", () => {
      this.#ended = true;
      this.#wake();
      this.#onDone();
    });
    message.on("error", () => this.#fail("the response body could not be read to its end"));
    message.on("aborted", () => this.#fail("the upstream closed the connection before the body's end"));
  }

  /** Bytes read from the upstream so far. */
  get received(): number {
    return this.#received;
  }

  override read(len: bigint): Uint8Array {
    if (this.#buffered > 0) return this.#take(Number(len));
    if (this.#error !== undefined) throw failed(this.#error);
    if (this.#ended) throw CLOSED;
    return new Uint8Array(0);
  }

  override blockingRead(len: bigint): Uint8Array | Promise<Uint8Array> {
    if (this.#readable()) return this.read(len);
    return this.#scope.guard(this.#whenReadable()).then(() => this.read(len));
  }

  override subscribe(): Pollable {
    return new EventPollable(
      this.#scope,
      () => this.#readable(),
      () => this.#whenReadable(),
    );
  }

  /** The guest dropped the stream: a body it did not read to the end is not downloaded further. */
  [Symbol.dispose](): void {
    if (!this.#ended) this.#message.destroy();
    this.#onDone();
  }

  #readable(): boolean {
    return this.#buffered > 0 || this.#ended || this.#error !== undefined;
  }

  #whenReadable(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #take(max: number): Uint8Array {
    const out = Buffer.allocUnsafe(Math.min(max, this.#buffered));
    let at = 0;
    while (at < out.byteLength) {
      const chunk = this.#chunks[0] as Buffer;
      const n = Math.min(chunk.byteLength, out.byteLength - at);
      chunk.copy(out, at, 0, n);
      at += n;
      if (n === chunk.byteLength) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(n);
    }
    this.#buffered -= out.byteLength;
    if (this.#buffered < PAUSE_AT && this.#message.isPaused()) this.#message.resume();
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  #fail(message: string): void {
    this.#error ??= message;
    this.#wake();
    this.#onDone();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** How much a guest may write before `check-write` asks it to wait for a flush. */
const WRITE_WINDOW = 64 * 1024;

export class RequestBodyStream extends OutputStream {
  readonly #chunks: Uint8Array[] = [];
  #written = 0;
  #closed = false;
  readonly #limit: number;
  /** Where bytes go once the connection is open; until then they are kept. */
  #target: ((bytes: Uint8Array) => void) | undefined;

  constructor(limit: number) {
    super(() => {});
    this.#limit = limit;
  }

  override checkWrite(): bigint {
    if (this.#closed) throw CLOSED;
    return BigInt(Math.min(WRITE_WINDOW, this.#limit - this.#written));
  }

  override write(contents: Uint8Array): void {
    if (this.#closed) throw CLOSED;
    if (this.#written + contents.byteLength > this.#limit) {
      throw failed(`request bodies are at most ${this.#limit} bytes (limits.outbound.requestBytes)`);
    }
    this.#written += contents.byteLength;
    const copy = new Uint8Array(contents);
    if (this.#target) this.#target(copy);
    else this.#chunks.push(copy);
  }

  override blockingWriteAndFlush(contents: Uint8Array): void {
    this.write(contents);
  }

  override blockingFlush(): void {}

  /** Bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /** The connection is open: what was written goes now, the rest as it is written. */
  connect(target: (bytes: Uint8Array) => void): void {
    for (const chunk of this.#chunks.splice(0)) target(chunk);
    this.#target = target;
  }

  close(): void {
    this.#closed = true;
  }
}
