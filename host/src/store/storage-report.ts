/**
 * Storage faults met in worker threads (kv.db, secrets.db), told to the main
 * thread's StorageHealth on a BroadcastChannel. A guest can meet a full disk
 * in a loop, so a worker says at once when a store starts failing, changes
 * how, or works again, and otherwise sends its count of failures at most
 * once a second.
 */
import { threadId } from "node:worker_threads";
import type { StorageFault, StorageReporter, StoreName } from "./storage-error.ts";

export const STORAGE_CHANNEL = "joule:storage";

/** What a worker posts on STORAGE_CHANNEL: `fault` null when the store was written again. */
export interface StorageMessage {
  store: StoreName;
  source: string;
  fault: StorageFault | null;
  /** Failures since the last message. */
  failures: number;
}

const FLUSH_MS = 1000;
const SOURCE = `worker ${threadId}`;

export class ChannelReporter implements StorageReporter {
  readonly #channel = new BroadcastChannel(STORAGE_CHANNEL);
  readonly #state = new Map<StoreName, { fault: StorageFault | null; unsent: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor() {
    (this.#channel as unknown as { unref?: () => void }).unref?.();
  }

  failed(store: StoreName, fault: StorageFault): void {
    const state = this.#state.get(store);
    if (state?.fault?.kind === fault.kind) {
      state.unsent++;
      this.#timer ??= setTimeout(() => this.#flush(), FLUSH_MS).unref();
      return;
    }
    if (state?.fault && state.unsent > 0)
      this.#post({ store, source: SOURCE, fault: state.fault, failures: state.unsent });
    this.#state.set(store, { fault, unsent: 0 });
    this.#post({ store, source: SOURCE, fault, failures: 1 });
  }

  wrote(store: StoreName): void {
    const state = this.#state.get(store);
    if (!state?.fault) return;
    if (state.unsent > 0) this.#post({ store, source: SOURCE, fault: state.fault, failures: state.unsent });
    this.#state.set(store, { fault: null, unsent: 0 });
    this.#post({ store, source: SOURCE, fault: null, failures: 0 });
  }

  #flush(): void {
    this.#timer = undefined;
    for (const [store, state] of this.#state) {
      if (state.fault && state.unsent > 0) {
        this.#post({ store, source: SOURCE, fault: state.fault, failures: state.unsent });
        state.unsent = 0;
      }
    }
  }

  #post(message: StorageMessage): void {
    this.#channel.postMessage(message);
  }
}

let reporter: ChannelReporter | undefined;

/** This thread's reporter: the channel is opened by the first fault, so a write that works costs a lookup. */
export const workerStorage: StorageReporter = {
  failed(store, fault) {
    reporter ??= new ChannelReporter();
    reporter.failed(store, fault);
  },
  wrote(store) {
    reporter?.wrote(store);
  },
};
