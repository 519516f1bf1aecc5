/**
 * Storage faults met in worker threads (kv.db, secrets.db), told to the main
 * thread's StorageHealth on a BroadcastChannel. A guest can meet a full disk
 * in a loop, so a worker says at once when a store starts failing, fails
 * another way, or works again, and otherwise sends its count of failures at
 * most once a second. Messages name the data dir: every host of a process
 * hears the channel.
 */
import { threadId } from "node:worker_threads";
import type { StorageFault, StorageReporter, StoreName } from "./storage-error.ts";

export const STORAGE_CHANNEL = "joule:storage";

/** What a worker posts on STORAGE_CHANNEL: `fault` null when the store was written again. */
export interface StorageMessage {
  dataDir: string;
  store: StoreName;
  source: string;
  fault: StorageFault | null;
  /** Failures since the last message. */
  failures: number;
}

const FLUSH_MS = 1000;
const SOURCE = `worker ${threadId}`;

class ChannelReporter implements StorageReporter {
  readonly #dataDir: string;
  readonly #channel = new BroadcastChannel(STORAGE_CHANNEL);
  readonly #state = new Map<StoreName, { fault: StorageFault | null; unsent: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
    (this.#channel as unknown as { unref?: () => void }).unref?.();
  }

  failed(store: StoreName, fault: StorageFault): void {
    const state = this.#state.get(store);
    if (state?.fault?.kind === fault.kind) {
      state.unsent++;
      this.#timer ??= setTimeout(() => this.#flush(), FLUSH_MS).unref();
      return;
    }
    if (state?.fault && state.unsent > 0) this.#post(store, state.fault, state.unsent);
    this.#state.set(store, { fault, unsent: 0 });
    this.#post(store, fault, 1);
  }

  wrote(store: StoreName): void {
    const state = this.#state.get(store);
    if (!state?.fault) return;
    if (state.unsent > 0) this.#post(store, state.fault, state.unsent);
    this.#state.set(store, { fault: null, unsent: 0 });
    this.#post(store, null, 0);
  }

  #flush(): void {
    this.#timer = undefined;
    for (const [store, state] of this.#state) {
      if (state.fault && state.unsent > 0) {
        this.#post(store, state.fault, state.unsent);
        state.unsent = 0;
      }
    }
  }

  #post(store: StoreName, fault: StorageFault | null, failures: number): void {
    const message: StorageMessage = { dataDir: this.#dataDir, store, source: SOURCE, fault, failures };
    this.#channel.postMessage(message);
  }
}

const reporters = new Map<string, ChannelReporter>();

/**
 * This thread's reporter for the stores of `dataDir`. The channel is opened
 * by the first fault, so a write that works costs two lookups.
 */
export function workerStorage(dataDir: string): StorageReporter {
  return {
    failed(store, fault) {
      let reporter = reporters.get(dataDir);
      if (!reporter) {
        reporter = new ChannelReporter(dataDir);
        reporters.set(dataDir, reporter);
      }
      reporter.failed(store, fault);
    },
    wrote(store) {
      reporters.get(dataDir)?.wrote(store);
    },
  };
}
