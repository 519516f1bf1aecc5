/**
 * What the host knows of its data dir's health: which stores fail, how,
 * since when, told by the code that writes them and by the workers (over
 * STORAGE_CHANNEL). A failure is logged once when it starts (and again if
 * it changes kind), and once when the store can be written again; /readyz
 * and the metrics read it here. While a store fails, its probe (a small
 * write) runs every second, so that it is found healthy again without
 * waiting for a request to try.
 */
import { faultOf, type StorageFault, type StorageReporter, type StoreName } from "./storage-error.ts";
import { STORAGE_CHANNEL, type StorageMessage } from "./storage-report.ts";

export interface StorageLog {
  error(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface StoreFailure {
  fault: StorageFault;
  since: number;
  failures: number;
}

const PROBE_MS = 1000;

export class StorageHealth implements StorageReporter {
  readonly #dataDir: string;
  readonly #failing = new Map<StoreName, StoreFailure>();
  /** Failed operations by store and kind, since the host started (a Prometheus counter reads it). */
  readonly failures = new Map<StoreName, Map<StorageFault["kind"], number>>();
  readonly #probes = new Map<StoreName, () => void | Promise<void>>();
  readonly #channel = new BroadcastChannel(STORAGE_CHANNEL);
  #log: StorageLog;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;

  constructor(dataDir: string, log?: StorageLog) {
    this.#dataDir = dataDir;
    // Until the host's logger exists (it is made with the HTTP server), faults are warnings.
    this.#log = log ?? {
      error: (fields, message) => process.emitWarning(`${message} ${JSON.stringify(fields)}`),
      info: () => {},
    };
    (this.#channel as unknown as { unref?: () => void }).unref?.();
    this.#channel.onmessage = (event) => {
      const message = (event as MessageEvent<StorageMessage>).data;
      if (message.dataDir !== dataDir) return;
      if (message.fault) this.failed(message.store, message.fault, message.failures, message.source);
      else this.wrote(message.store);
    };
  }

  useLog(log: StorageLog): void {
    this.#log = log;
  }

  /** Runs `probe` every second while `store` fails: it returns when the store could be written, or throws. */
  probe(store: StoreName, probe: () => void | Promise<void>): void {
    this.#probes.set(store, probe);
  }

  failed(store: StoreName, fault: StorageFault, count = 1, source = "host"): void {
    if (count > 0) {
      let byKind = this.failures.get(store);
      if (!byKind) {
        byKind = new Map();
        this.failures.set(store, byKind);
      }
      byKind.set(fault.kind, (byKind.get(fault.kind) ?? 0) + count);
    }
    const failing = this.#failing.get(store);
    if (failing && failing.fault.kind === fault.kind) {
      failing.failures += count;
      return;
    }
    this.#failing.set(store, {
      fault,
      since: failing?.since ?? Date.now(),
      failures: (failing?.failures ?? 0) + count,
    });
    this.#log.error(
      { store, kind: fault.kind, cause: fault.cause, source },
      `storage failing: ${store} cannot be used (${fault.kind}: ${fault.cause}); what needs it answers 503 JOULE_ERR_HOST_STORAGE until it recovers, which the host tries every second`,
    );
    this.#timer ??= setInterval(() => void this.#runProbes(), PROBE_MS).unref();
  }

  wrote(store: StoreName): void {
    const failing = this.#failing.get(store);
    if (!failing) return;
    this.#failing.delete(store);
    this.#log.info(
      { store, failedForMs: Date.now() - failing.since, failures: failing.failures },
      `storage recovered: ${store} can be written again`,
    );
    if (this.#failing.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  isFailing(store: StoreName): boolean {
    return this.#failing.has(store);
  }

  get failing(): ReadonlyMap<StoreName, StoreFailure> {
    return this.#failing;
  }

  /** Each failing store as /readyz shows it: `"full since <time>: <cause>"`. */
  readiness(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [store, { fault, since }] of this.#failing)
      out[store] = `${fault.kind} since ${new Date(since).toISOString()}: ${fault.cause}`;
    return out;
  }

  async #runProbes(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    try {
      for (const store of [...this.#failing.keys()]) {
        const probe = this.#probes.get(store);
        if (!probe) continue;
        try {
          await probe();
          this.wrote(store);
        } catch (error) {
          // Still failing (not counted: the probe is not an operation anyone asked for).
          const fault = faultOf(error, this.#dataDir);
          if (fault) this.failed(store, fault, 0, "probe");
        }
      }
    } finally {
      this.#probing = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#channel.close();
  }
}
