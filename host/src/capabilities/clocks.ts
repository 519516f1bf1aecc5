/**
 * wasi:clocks, always granted: a monotonic clock in nanoseconds and the wall
 * clock. Without them `Date.now()` traps inside a StarlingMonkey guest. A
 * subscription is a timer of the instance's IoScope (io.ts): waiting for it
 * suspends the guest, not the worker.
 */
import { type IoScope, TimerPollable } from "./io.ts";

export function monotonicNow(): bigint {
  return process.hrtime.bigint();
}

function wallNow(): { seconds: bigint; nanoseconds: number } {
  const ms = Date.now();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
}

export function clockImports(scope: IoScope) {
  return {
    "wasi:clocks/monotonic-clock": {
      now: monotonicNow,
      subscribeInstant: (when: bigint) => new TimerPollable(scope, when),
      subscribeDuration: (duration: bigint) => new TimerPollable(scope, monotonicNow() + duration),
    },
    "wasi:clocks/wall-clock": { now: wallNow },
  };
}
