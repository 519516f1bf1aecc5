/**
 * wasi:clocks, always granted: a monotonic clock in nanoseconds and the wall
 * clock. Without them `Date.now()` traps inside a StarlingMonkey guest.
 */
import { Pollable } from "./io.ts";

export function monotonicNow(): bigint {
  return process.hrtime.bigint();
}

function wallNow(): { seconds: bigint; nanoseconds: number } {
  const ms = Date.now();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
}

export function clockImports() {
  return {
    "wasi:clocks/monotonic-clock": {
      now: monotonicNow,
      subscribeInstant: (when: bigint) => new Pollable(when),
      subscribeDuration: (duration: bigint) => new Pollable(monotonicNow() + duration),
    },
    "wasi:clocks/wall-clock": { now: wallNow },
  };
}
