/**
 * The instances a worker keeps between invocations, per function. An
 * instance serves one invocation at a time (a JS engine instance is not
 * re-entrant), so a function invoked N times at once has N instances in use
 * here; when they finish, a few stay warm for the next requests and the
 * rest are dropped, so a burst does not leave its memory behind. An
 * instance is kept only for the version that made it, never for another
 * function; idle ones go after the function's idle timeout (scale to zero),
 * unless the function keeps instances warm (minInstances).
 */
import type { FunctionInstance } from "../runtime/instance.ts";

/** Idle instances kept per function beyond what it asks to keep warm. */
export const IDLE_PER_FUNCTION = 4;

/**
 * Functions a worker keeps idle instances of. Past it the least recently
 * used goes; workers are not told of deletes, so this also bounds what
 * deleted functions leave behind.
 */
const MAX_WARM_FUNCTIONS = 64;

interface Entry {
  version: string;
  idle: FunctionInstance[];
  busy: number;
  lastUsed: number;
  idleTimeoutMs: number;
  /** Idle instances kept whatever the idle timeout (scaling.minInstances, this worker's share). */
  keep: number;
}

export interface KeepRules {
  idleTimeoutMs: number;
  keep: number;
}

export class WarmInstances {
  /** By function name, least recently used first. */
  readonly #entries = new Map<string, Entry>();
  /** Told whenever the count of a function's instances here changes. */
  readonly #report: (fn: string, count: number) => void;

  constructor(report: (fn: string, count: number) => void) {
    this.#report = report;
  }

  /** An idle instance of this version, now in use; undefined when a new one must be made. */
  take(fn: string, version: string, rules: KeepRules): FunctionInstance | undefined {
    const entry = this.#entry(fn, version, rules);
    const instance = entry.idle.pop();
    entry.busy++;
    return instance;
  }

  /** How many instances of the function this worker holds, idle and in use. */
  count(fn: string): number {
    const entry = this.#entries.get(fn);
    return entry ? entry.idle.length + entry.busy : 0;
  }

  /** The invocation ended: the instance stays warm if it may, else it goes. Returns the function's count. */
  release(fn: string, instance: FunctionInstance | undefined, reusable: boolean): number {
    const entry = this.#entries.get(fn);
    if (!entry) return 0;
    entry.busy--;
    entry.lastUsed = Date.now();
    if (instance && reusable && instance.version === entry.version) {
      if (entry.idle.length < Math.max(IDLE_PER_FUNCTION, entry.keep)) entry.idle.push(instance);
    }
    const count = entry.idle.length + entry.busy;
    if (count === 0) this.#entries.delete(fn);
    return count;
  }

  /** Drops idle instances unused for their function's idle timeout (scale to zero). */
  sweep(now = Date.now()): void {
    for (const [fn, entry] of this.#entries) {
      if (now - entry.lastUsed <= entry.idleTimeoutMs) continue;
      const kept = Math.min(entry.keep, entry.idle.length);
      if (entry.idle.length === kept) continue;
      entry.idle.splice(0, entry.idle.length - kept);
      this.#changed(fn, entry);
    }
  }

  #entry(fn: string, version: string, rules: KeepRules): Entry {
    let entry = this.#entries.get(fn);
    if (entry) this.#entries.delete(fn); // most recently used last
    if (entry && entry.version !== version) {
      // A new version: the old one's idle instances go; its busy ones finish and are dropped then.
      entry = { ...entry, version, idle: [] };
    }
    entry ??= { version, idle: [], busy: 0, lastUsed: Date.now(), idleTimeoutMs: rules.idleTimeoutMs, keep: 0 };
    entry.idleTimeoutMs = rules.idleTimeoutMs;
    entry.keep = rules.keep;
    this.#entries.set(fn, entry);
    this.#evict();
    return entry;
  }

  /** Past MAX_WARM_FUNCTIONS, the least recently used functions' idle instances go. */
  #evict(): void {
    let over = this.#entries.size - MAX_WARM_FUNCTIONS;
    for (const [fn, entry] of this.#entries) {
      if (over <= 0) break;
      if (entry.busy > 0) continue;
      this.#entries.delete(fn);
      this.#report(fn, 0);
      over--;
    }
  }

  #changed(fn: string, entry: Entry): void {
    const count = entry.idle.length + entry.busy;
    if (count === 0) this.#entries.delete(fn);
    this.#report(fn, count);
  }
}
