/**
 * wasi:io (error, poll, streams) as the host implements it. Streams here are
 * in-memory: an output stream hands each write to a sink, an input stream is
 * always closed. A pollable is either ready now or at a monotonic deadline;
 * waiting blocks the worker thread (Atomics.wait), which is bounded by the
 * invocation's wall-clock limit.
 */

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread for `ns` nanoseconds. */
function sleepNs(ns: bigint): void {
  if (ns <= 0n) return;
  Atomics.wait(sleeper, 0, 0, Number(ns) / 1e6);
}

export class Pollable {
  /** Monotonic deadline in ns; undefined means always ready. */
  readonly #deadline: bigint | undefined;

  constructor(deadline?: bigint) {
    this.#deadline = deadline;
  }

  get deadline(): bigint | undefined {
    return this.#deadline;
  }

  ready(): boolean {
    return this.#deadline === undefined || process.hrtime.bigint() >= this.#deadline;
  }

  block(): void {
    if (this.#deadline !== undefined) sleepNs(this.#deadline - process.hrtime.bigint());
  }
}

/** wasi:io/poll#poll: waits until at least one pollable is ready, returns the indexes of the ready ones. */
export function poll(pollables: Pollable[]): Uint32Array {
  // WASI: polling nothing would wait forever; the call traps instead.
  if (pollables.length === 0) throw new RangeError("wasi:io/poll#poll called with an empty list");
  for (;;) {
    const ready: number[] = [];
    let earliest: bigint | undefined;
    pollables.forEach((p, index) => {
      if (p.ready()) ready.push(index);
      else if (p.deadline !== undefined && (earliest === undefined || p.deadline < earliest)) earliest = p.deadline;
    });
    if (ready.length > 0 || earliest === undefined) return new Uint32Array(ready);
    sleepNs(earliest - process.hrtime.bigint());
  }
}

export class IoError {
  readonly #message: string;

  constructor(message: string) {
    this.#message = message;
  }

  toDebugString(): string {
    return this.#message;
  }
}

/** The `closed` case of wasi:io/streams' stream-error; jco maps a thrown value to the `err` case. */
const CLOSED = Object.freeze({ tag: "closed" });

export class InputStream {
  read(_len: bigint): Uint8Array {
    throw CLOSED;
  }

  blockingRead(_len: bigint): Uint8Array {
    throw CLOSED;
  }

  subscribe(): Pollable {
    return new Pollable();
  }
}

/** How many bytes a guest may write before it must flush; output is consumed synchronously anyway. */
const WRITE_BUDGET = 1024n * 1024n;

export class OutputStream {
  readonly #sink: (bytes: Uint8Array) => void;

  constructor(sink: (bytes: Uint8Array) => void) {
    this.#sink = sink;
  }

  checkWrite(): bigint {
    return WRITE_BUDGET;
  }

  write(contents: Uint8Array): void {
    this.#sink(contents);
  }

  blockingWriteAndFlush(contents: Uint8Array): void {
    this.#sink(contents);
  }

  blockingFlush(): void {}

  subscribe(): Pollable {
    return new Pollable();
  }
}

export function ioImports() {
  return {
    "wasi:io/error": { Error: IoError },
    "wasi:io/poll": { Pollable, poll },
    "wasi:io/streams": { InputStream, OutputStream },
  };
}
