/**
 * `npm run bench:fuel`: what fuel metering costs and what a unit of fuel is.
 *
 * For each workload (core-Wasm modules and requests to a JS guest, among
 * them call-heavy ones: recursion and small functions called in a loop) it
 * runs the unmetered and the metered code alternately in the same thread
 * and prints the medians and p99 of both (wall time), the overhead, the
 * fuel a run used and fuel per CPU-second (the thread's CPU time over all
 * unmetered runs: it is counted in 4 ms ticks here, too coarse for one
 * run); then the geometric mean of the overheads; then what a host refill
 * costs (recursive fib with tiny slices against none, in the same run) and
 * what that makes of SLICE; then the instrumenter's speed on the JS
 * engine's main module. A benchmark: it fails only on errors.
 *
 * BENCH_RUNS (default 15) sets the runs per workload, BENCH_ONLY (a
 * substring) picks workloads.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { instrument } from "../host/src/fuel/instrument.ts";
import { SLICE } from "../host/src/runtime/fuel-meter.ts";
import { coreWorkload, jsGuest, type Workload } from "./fuel-workloads.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const ONLY = process.env.BENCH_ONLY;

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)] as number;
const p99 = (xs: number[]) => sorted(xs)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)] as number;

/** Wall time of `run`, in ms, and the thread's CPU time added to `cpu`. */
function timed(run: () => unknown, cpu: { ms: number }): number {
  const before = process.threadCpuUsage();
  const started = performance.now();
  run();
  const elapsed = performance.now() - started;
  const spent = process.threadCpuUsage(before);
  cpu.ms += (spent.user + spent.system) / 1000;
  return elapsed;
}

interface Measured {
  plain: number[];
  metered: number[];
  fuel: bigint;
  /** Thread CPU time of all unmetered runs together, in ms. */
  plainCpuMs: number;
}

/** Alternates unmetered and metered runs after a warm-up; the results must agree. */
function measure(w: Workload): Measured {
  const expected = w.plain();
  const got = w.metered().result;
  if (got !== expected) throw new Error(`${w.name}: metered ${got} but unmetered ${expected}`);
  for (let i = 0; i < 2; i++) {
    w.plain();
    w.metered();
  }
  const m: Measured = { plain: [], metered: [], fuel: 0n, plainCpuMs: 0 };
  const fuels: bigint[] = [];
  const plainCpu = { ms: 0 };
  const meteredCpu = { ms: 0 };
  for (let i = 0; i < RUNS; i++) {
    m.plain.push(timed(() => w.plain(), plainCpu));
    m.metered.push(
      timed(() => {
        fuels.push(w.metered().fuel);
      }, meteredCpu),
    );
  }
  m.plainCpuMs = plainCpu.ms;
  m.fuel = fuels.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[fuels.length >> 1] as bigint;
  return m;
}

const ms = (x: number) => x.toFixed(2).padStart(8);

async function main() {
  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}; node ${process.version}; ${RUNS} runs each (medians, p99)`,
  );
  const work = await mkdtemp(join(tmpdir(), "joule-bench-fuel-"));
  try {
    const js = await jsGuest(work);
    const workloads = [
      await coreWorkload("core wasm: FNV-1a hash loop", "hash.wat", 200),
      await coreWorkload("core wasm: quicksort 200k i32", "sort.wat", 200_000),
      await coreWorkload("core wasm: recursive fib(32)", "fib.wat", 32),
      await coreWorkload("core wasm: small functions in a loop", "calls.wat", 20_000_000),
      js.workload("js: sieve + JSON (StarlingMonkey)", "n=300000"),
      js.workload("js: recursive fib(22)", "work=fib&n=22"),
      js.workload("js: small functions in a loop", "work=calls&n=30000"),
      js.workload("js: integer loop", "work=loop&n=100000"),
      js.workload("js: JSON.stringify", "work=json&n=20000"),
      js.workload("js: string concatenation", "work=strings&n=100000"),
      js.workload("js: crypto.subtle.digest 1 KiB", "work=digest&n=1000"),
      js.workload("js: Date.now() loop (host calls)", "work=clock&n=20000"),
    ].filter((w) => !ONLY || w.name.includes(ONLY));
    console.log(
      `${"workload".padEnd(38)} ${"unmetered p50/p99 ms".padStart(19)} ${"metered p50/p99 ms".padStart(19)}  overhead ${"fuel".padStart(14)}  fuel/CPU-s`,
    );
    // The mean is over CPU-bound code: a loop of host calls spends its time outside Wasm.
    const inMean = (w: Workload) => !w.name.includes("host calls");
    let logSum = 0;
    for (const w of workloads) {
      const m = measure(w);
      const overhead = median(m.metered) / median(m.plain);
      if (inMean(w)) logSum += Math.log(overhead);
      const perSecond = (Number(m.fuel) * RUNS) / (m.plainCpuMs / 1000);
      console.log(
        `${w.name.padEnd(38)} ${ms(median(m.plain))} ${ms(p99(m.plain))}   ${ms(median(m.metered))} ${ms(p99(m.metered))}   ${`${((overhead - 1) * 100).toFixed(1)}%`.padStart(7)} ${String(m.fuel).padStart(14)}  ${perSecond.toExponential(2)}`,
      );
    }
    const counted = workloads.filter(inMean).length;
    if (counted > 0) {
      console.log(
        `geometric mean overhead (${counted} CPU-bound workloads): ${((Math.exp(logSum / counted) - 1) * 100).toFixed(1)}%`,
      );
    }

    // What a slice costs: a host refill (a call out of Wasm at a function entry) measured as the
    // difference between tiny slices and none, on recursive fib, whose every slice is a refill.
    // Loop headers draw their slices in Wasm, a few instructions each.
    const none = await coreWorkload("core wasm: recursive fib(30)", "fib.wat", 30, 1n << 50n);
    const tiny = await coreWorkload("core wasm: recursive fib(30)", "fib.wat", 30, 1000n);
    const slices = { none: [] as number[], tiny: [] as number[] };
    const refills = { none: none.metered().refills, tiny: tiny.metered().refills };
    for (let i = 0; i < RUNS * 2; i++) {
      slices.none.push(timed(() => none.metered(), { ms: 0 }));
      slices.tiny.push(timed(() => tiny.metered(), { ms: 0 }));
    }
    const perRefillUs = ((median(slices.tiny) - median(slices.none)) * 1000) / (refills.tiny - refills.none);
    console.log(
      `\nrefills (core wasm: recursive fib(30)): ${refills.tiny} of 1000 fuel each ${ms(median(slices.tiny)).trim()} ms, ${refills.none} ${ms(median(slices.none)).trim()} ms: ${perRefillUs.toFixed(2)} µs per refill`,
    );
    for (const fuelPerSecond of [5e9, 1e10, 2e10]) {
      const perSecond = fuelPerSecond / Number(SLICE);
      console.log(
        `  SLICE ${SLICE} at ${fuelPerSecond.toExponential(0)} fuel/s: a slice per ${((1000 * Number(SLICE)) / fuelPerSecond).toFixed(2)} ms of CPU; refilled by the host at most ${(((perSecond * perRefillUs) / 1e6) * 100).toFixed(3)}% of the time`,
      );
    }

    const speeds: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      instrument(js.mainModule);
      speeds.push(js.mainModule.length / 1e6 / ((performance.now() - t) / 1000));
    }
    console.log(
      `\ninstrumenter: ${(js.mainModule.length / 1e6).toFixed(1)} MB engine module at ${median(speeds).toFixed(0)} MB/s (median of 4)`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
