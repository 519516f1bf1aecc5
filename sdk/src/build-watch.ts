/**
 * Watches the function's top level while `joule build` pre-initializes it,
 * for reads of the clock. Top-level code runs once, at build time, and what
 * it leaves is the snapshot every instance starts from: a `Date.now()`
 * there is the build's time, frozen, in every request. The generated entry
 * imports this module before the function's, and calls `endBuildWatch()`
 * after: each read is printed as a marked line that the build turns into a
 * warning naming the source line (host/src/build/build-warnings.ts).
 * Nothing of it is left afterwards.
 */

export const BUILD_WARNING_MARK = "JOULE_BUILD_WARNING ";

const OriginalDate = Date;
const originalNow = Date.now;
const originalPerformanceNow = performance.now;
const seen: Array<{ call: string; stack: string }> = [];
let watching = true;

function record(call: string): void {
  if (watching && seen.length < 5) seen.push({ call, stack: new Error().stack ?? "" });
}

OriginalDate.now = function now() {
  record("Date.now()");
  return originalNow.call(OriginalDate);
};
performance.now = function now() {
  record("performance.now()");
  return originalPerformanceNow.call(performance);
};
(globalThis as { Date: DateConstructor }).Date = new Proxy(OriginalDate, {
  construct(target, args, newTarget) {
    if (args.length === 0) record("new Date()");
    return Reflect.construct(target, args, newTarget);
  },
  apply(target, self, args) {
    record("Date()");
    return Reflect.apply(target, self, args);
  },
});

/** Puts the clock back and reports what the top level read. */
export function endBuildWatch(): void {
  watching = false;
  (globalThis as { Date: DateConstructor }).Date = OriginalDate;
  OriginalDate.now = originalNow;
  performance.now = originalPerformanceNow;
  for (const use of seen) console.log(`${BUILD_WARNING_MARK}${JSON.stringify(use)}`);
  seen.length = 0;
}
