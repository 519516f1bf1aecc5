/**
 * wasi:io (error, poll, streams) as the host implements it. Waiting never
 * blocks the worker thread: `poll` and `pollable.block` are suspending
 * imports (JSPI, listed in runtime/transpile-worker.ts), so a guest that
 * waits for a timer (or, later, a response) suspends its own Wasm stack
 * and the worker goes on running other invocations meanwhile. They answer
 * at once, without suspending, when something is ready already.
 *
 * Every instance has one IoScope: the invocation it is serving (whose abort
 * signal ends any wait: a deadline or a client that went away cancels only
 * that invocation) and what it holds open: timers, outbound requests,
 * bodies. Something still held when an invocation ends belongs to it (a
 * setInterval left behind, a fetch never awaited): the instance is then not
 * reused and what it held is closed, so nothing of one invocation runs, or
 * is billed, in the next.
 */

/** Something an instance holds open: a timer, a request upstream. */
export interface Held {
  /** Closes it (a connection is destroyed; the upstream sees it go). */
  close(): void;
}

/** Why a wait ended early: thrown into the guest's suspended stack, which unwinds. */
export class InvocationCancelled extends Error {
  override name = "InvocationCancelled";
}

export class IoScope {
  /** What the guest holds open and has not dropped yet. */
  readonly held = new Set<Held>();
  #signal: AbortSignal | undefined;
  /** Set once an invocation was cancelled: the instance is not used again, and every wait fails at once. */
  #dead = false;

  /** An invocation starts on this instance; `signal` ends its waits. */
  begin(signal: AbortSignal | undefined): void {
    this.#signal = signal;
  }

  /** The current invocation's signal: what the host does for it (a request upstream) stops with it. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  get dead(): boolean {
    return this.#dead || this.#signal?.aborted === true;
  }

  /** Whether the instance holds nothing of the invocation that just ended. */
  get settled(): boolean {
    return !this.dead && this.held.size === 0;
  }

  /** The instance is dropped: everything it held is closed. */
  closeAll(): void {
    for (const held of this.held) held.close();
    this.held.clear();
  }

  /** `promise`, or a rejection as soon as the invocation is cancelled. */
  guard<T>(promise: Promise<T>): Promise<T> {
    const signal = this.#signal;
    if (this.dead) return Promise.reject(this.#cancelled());
    if (!signal) return promise;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#dead = true;
        reject(this.#cancelled());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  #cancelled(): InvocationCancelled {
    this.#dead = true;
    const reason = this.#signal?.reason;
    return new InvocationCancelled(reason instanceof Error ? reason.message : "the invocation was cancelled");
  }
}

/**
 * Something the guest may wait for. The base is always ready; a timer is
 * ready at its monotonic deadline (ns). Subclasses wrap other events.
 */
export class Pollable {
  ready(): boolean {
    return true;
  }

  /** Settles once ready (a timer: at its deadline). */
  whenReady(): Promise<void> {
    return Promise.resolve();
  }

  /** Suspends the guest until ready; returns at once when it is. */
  block(): void | Promise<void> {
    if (this.ready()) return;
    return this.scope().guard(untilReady([this]).then(() => undefined));
  }

  /** The scope of the instance that made it; the always-ready pollable waits for nothing. */
  scope(): IoScope {
    return IDLE_SCOPE;
  }
}

const IDLE_SCOPE = new IoScope();

export class TimerPollable extends Pollable {
  readonly #deadline: bigint;
  readonly #scope: IoScope;

  constructor(scope: IoScope, deadlineNs: bigint) {
    super();
    this.#deadline = deadlineNs;
    this.#scope = scope;
    scope.held.add(this);
  }

  close(): void {}

  override ready(): boolean {
    return process.hrtime.bigint() >= this.#deadline;
  }

  override whenReady(): Promise<void> {
    const ms = Number(this.#deadline - process.hrtime.bigint()) / 1e6;
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.ceil(ms))));
  }

  override scope(): IoScope {
    return this.#scope;
  }

  /** The guest dropped it (jco calls this when the handle goes). */
  [Symbol.dispose](): void {
    this.#scope.held.delete(this);
  }
}

/** Ready once an event happens: a response arriving, body bytes, a stream draining. */
export class EventPollable extends Pollable {
  readonly #scope: IoScope;
  readonly #ready: () => boolean;
  readonly #when: () => Promise<void>;

  constructor(scope: IoScope, ready: () => boolean, when: () => Promise<void>) {
    super();
    this.#scope = scope;
    this.#ready = ready;
    this.#when = when;
  }

  override ready(): boolean {
    return this.#ready();
  }

  override whenReady(): Promise<void> {
    return this.ready() ? Promise.resolve() : this.#when();
  }

  override scope(): IoScope {
    return this.#scope;
  }
}

/** wasi:io/poll#poll: the indexes of the ready pollables, suspending until at least one is. */
export function poll(pollables: Pollable[]): Uint32Array | Promise<Uint32Array> {
  // WASI: polling nothing would wait forever; the call traps instead.
  if (pollables.length === 0) throw new RangeError("wasi:io/poll#poll called with an empty list");
  const ready = readyIndexes(pollables);
  if (ready.length > 0) return ready;
  const scope = pollables.find((p) => p.scope() !== IDLE_SCOPE)?.scope() ?? IDLE_SCOPE;
  return scope.guard(untilReady(pollables));
}

/**
 * Waits until at least one pollable is ready and says which. Never an empty
 * answer: a guest engine takes the first index it is given (StarlingMonkey
 * reads past an empty list and runs whichever task comes first), and a
 * timer can wake a little before its deadline on the monotonic clock
 * (libuv's clock is in whole ms), so a wake with nothing ready waits again.
 */
async function untilReady(pollables: Pollable[]): Promise<Uint32Array> {
  for (;;) {
    await Promise.race(pollables.map((p) => p.whenReady()));
    const ready = readyIndexes(pollables);
    if (ready.length > 0) return ready;
  }
}

function readyIndexes(pollables: Pollable[]): Uint32Array {
  const ready: number[] = [];
  pollables.forEach((p, index) => {
    if (p.ready()) ready.push(index);
  });
  return new Uint32Array(ready);
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

  blockingRead(_len: bigint): Uint8Array | Promise<Uint8Array> {
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
