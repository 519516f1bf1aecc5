/**
 * The bodies of one invocation inside its worker: the request body as the
 * main thread forwards it, read by the guest (`body.read`), and the response
 * the guest streams (`body.respond`, `body.write`), forwarded to the main
 * thread chunk by chunk. A guest that writes faster than the client reads
 * waits once WINDOW bytes are out and not yet taken (credit from the main
 * thread), so a slow client holds back the guest instead of filling memory.
 */

/** Response bytes a guest may have in flight before `write` waits for the client. */
const WINDOW = 256 * 1024;

/** What the invocation tells the main thread, over the worker's port. */
export interface BodyWire {
  head(status: number, headers: Array<[string, string]>): void;
  chunk(bytes: Uint8Array): void;
}

export class InvocationBody {
  readonly #wire: BodyWire;
  readonly #incoming: Uint8Array[] = [];
  #incomingEnded: boolean;
  #incomingError: string | undefined;
  #readers: Array<() => void> = [];
  #responded = false;
  #inFlight = 0;
  #writers: Array<() => void> = [];
  #closed: string | undefined;

  /** `first`: what came with the task; `streamed`: whether more follows (`push`, `end`). */
  constructor(wire: BodyWire, first: Uint8Array, streamed: boolean) {
    this.#wire = wire;
    if (first.byteLength > 0) this.#incoming.push(first);
    this.#incomingEnded = !streamed;
  }

  // The request side.

  push(bytes: Uint8Array): void {
    this.#incoming.push(bytes);
    this.#wake();
  }

  end(error?: string): void {
    this.#incomingEnded = true;
    this.#incomingError = error;
    this.#wake();
  }

  /** The next bytes (at most `max`), undefined at the end; a promise while none have come yet. */
  read(max: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (this.#incoming.length > 0) return this.#take(max);
    if (this.#incomingError !== undefined) throw this.#incomingError;
    if (this.#incomingEnded) return undefined;
    return new Promise<void>((resolve) => this.#readers.push(resolve)).then(() => this.read(max));
  }

  /** The whole request body (for a 0.1 component, which takes it in one piece). */
  async readAll(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const next = await this.read(Number.MAX_SAFE_INTEGER);
      if (next === undefined) break;
      parts.push(next);
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  #take(max: number): Uint8Array {
    const first = this.#incoming[0] as Uint8Array;
    if (first.byteLength <= max) return this.#incoming.shift() as Uint8Array;
    this.#incoming[0] = first.subarray(max);
    return first.subarray(0, max);
  }

  #wake(): void {
    const readers = this.#readers;
    this.#readers = [];
    for (const wake of readers) wake();
  }

  // The response side.

  get responded(): boolean {
    return this.#responded;
  }

  respond(status: number, headers: Array<[string, string]>): void {
    if (this.#closed) throw this.#closed;
    if (this.#responded) throw "the response was started already";
    this.#responded = true;
    this.#wire.head(status, headers);
  }

  /** Sends bytes; a promise while WINDOW bytes are out and the client has not taken them. */
  write(bytes: Uint8Array): void | Promise<void> {
    if (this.#closed) throw this.#closed;
    if (!this.#responded) throw "body.write before body.respond";
    if (bytes.byteLength === 0) return;
    this.#inFlight += bytes.byteLength;
    this.#wire.chunk(new Uint8Array(bytes));
    if (this.#inFlight <= WINDOW) return;
    return new Promise<void>((resolve) => this.#writers.push(resolve)).then(() => {
      if (this.#closed) throw this.#closed;
    });
  }

  /** The client took `bytes` more. */
  credit(bytes: number): void {
    this.#inFlight -= bytes;
    if (this.#inFlight > WINDOW) return;
    const writers = this.#writers;
    this.#writers = [];
    for (const wake of writers) wake();
  }

  /** The invocation is over (or cancelled): waiting readers and writers are let go with `why`. */
  close(why: string): void {
    this.#closed ??= why;
    this.end(why);
    this.credit(Number.POSITIVE_INFINITY);
  }
}
