/**
 * `joule calibrate`: measures fuel per CPU-second on one core of this
 * machine, running a CPU-bound metered workload (a hash loop and a
 * quicksort, alternately) for a few seconds, and writes the energy model's
 * calibration into the data dir.
 *
 * Power per core: given (`--watts`), it is the operator's. Otherwise, where
 * the CPU packages' RAPL energy counters can be read (rapl.ts), it is
 * measured: the packages' power idle for a second, then while the workload
 * keeps one core busy; a core's share is its marginal power plus an equal
 * share of the idle power, idle ÷ CPUs + (busy − idle), which is what each
 * CPU draws when all are loaded if the marginal power is the same for each.
 * Where they cannot be read (not Linux, no RAPL, not root, a VM), it keeps
 * the configured power (JOULE_WATTS_PER_CORE, default 4.5 W) and says why.
 */
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "@bytecodealliance/jco";
import { instrument } from "../fuel/instrument.ts";
import { FuelMeter, FuelPort, instantiateMetered } from "../runtime/fuel-meter.ts";
import { CALIBRATION_FILE, type Calibration } from "./model.ts";
import { joulesBetween, POWERCAP_ROOT, probeRapl, readEnergy } from "./rapl.ts";

const WORKLOAD = `(module
  (memory 16)
  (func $hash (param $rounds i32) (result i32)
    (local $h i32) (local $i i32) (local $r i32)
    (local.set $h (i32.const 0x811c9dc5))
    (loop $round
      (local.set $i (i32.const 0))
      (loop $byte
        (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $i))) (i32.const 0x01000193)))
        (i32.store8 (local.get $i) (local.get $h))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $byte (i32.lt_u (local.get $i) (i32.const 65536))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $r) (local.get $rounds))))
    (local.get $h))
  (func $sort (param $lo i32) (param $hi i32)
    (local $pivot i32) (local $i i32) (local $j i32) (local $t i32)
    (if (i32.ge_s (local.get $lo) (local.get $hi)) (then (return)))
    (local.set $pivot (i32.load (i32.shl (local.get $hi) (i32.const 2))))
    (local.set $i (local.get $lo))
    (local.set $j (local.get $lo))
    (block $done (loop $scan
      (br_if $done (i32.ge_s (local.get $j) (local.get $hi)))
      (if (i32.lt_s (i32.load (i32.shl (local.get $j) (i32.const 2))) (local.get $pivot)) (then
        (local.set $t (i32.load (i32.shl (local.get $i) (i32.const 2))))
        (i32.store (i32.shl (local.get $i) (i32.const 2)) (i32.load (i32.shl (local.get $j) (i32.const 2))))
        (i32.store (i32.shl (local.get $j) (i32.const 2)) (local.get $t))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $scan)))
    (local.set $t (i32.load (i32.shl (local.get $i) (i32.const 2))))
    (i32.store (i32.shl (local.get $i) (i32.const 2)) (i32.load (i32.shl (local.get $hi) (i32.const 2))))
    (i32.store (i32.shl (local.get $hi) (i32.const 2)) (local.get $t))
    (call $sort (local.get $lo) (i32.sub (local.get $i) (i32.const 1)))
    (call $sort (i32.add (local.get $i) (i32.const 1)) (local.get $hi)))
  (func (export "run") (result i32)
    (local $i i32) (local $x i32)
    (local.set $x (i32.const 12345))
    (loop $fill
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
      (i32.store (i32.shl (local.get $i) (i32.const 2)) (i32.shr_u (local.get $x) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 100000))))
    (call $sort (i32.const 0) (i32.const 99999))
    (call $hash (i32.const 20))))`;

export interface CalibrateOptions {
  dataDir: string;
  /** The configured power per core (JOULE_WATTS_PER_CORE or its default): kept where none is measured. */
  wattsPerCore: number;
  /** The operator gave the power (`--watts`): it is not measured. */
  wattsGiven?: boolean;
  seconds: number;
  /** Where the powercap interface is (a test's fake directory). */
  powercapRoot?: string;
  /** How long the idle power is measured, ms (default 1000). */
  idleMs?: number;
}

/** Runs `run` until `seconds` of wall time have passed; the thread's CPU time it took, s. */
function busyFor(seconds: number, run: () => void): number {
  const cpu = process.threadCpuUsage();
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) run();
  const spent = process.threadCpuUsage(cpu);
  return (spent.user + spent.system) / 1e6;
}

export async function calibrate(options: CalibrateOptions): Promise<Calibration> {
  const port = new FuelPort();
  const instance = instantiateMetered(
    new WebAssembly.Module(instrument(await parse(WORKLOAD)).bytes as Uint8Array<ArrayBuffer>),
    {},
    port,
  );
  const run = instance.exports.run as () => number;
  const budget = 1n << 60n;
  // Warm up: let V8 tier the code up before measuring.
  let meter = new FuelMeter(budget);
  meter.attach(port);
  for (let i = 0; i < 5; i++) run();
  meter.settle();

  const rapl = options.wattsGiven ? undefined : await probeRapl(options.powercapRoot ?? POWERCAP_ROOT);
  const packages = rapl?.ok ? rapl.packages : undefined;
  // A reading that fails midway (permissions changed, a driver went away) drops the measurement.
  const read = async () => (packages ? await readEnergy(packages).catch(() => undefined) : undefined);
  let idleWatts: number | undefined;
  if (packages) {
    const before = await read();
    const started = performance.now();
    await sleep(options.idleMs ?? 1000);
    const after = await read();
    const seconds = (performance.now() - started) / 1000;
    if (before && after) idleWatts = joulesBetween(packages, before, after) / seconds;
  }
  meter = new FuelMeter(budget);
  meter.attach(port);
  const energyBefore = await read();
  const wallStarted = performance.now();
  const cpuSeconds = busyFor(options.seconds, run);
  const wallSeconds = (performance.now() - wallStarted) / 1000;
  const energyAfter = await read();
  const fuelPerSecond = Math.round(Number(meter.settle().used) / cpuSeconds);

  const machine = `${cpus()[0]?.model ?? "cpu"}, node ${process.version}`;
  let wattsPerCore = options.wattsPerCore;
  let power: Calibration["power"] = {
    source: "configured",
    why: options.wattsGiven ? "given with --watts" : `not measured: ${rapl?.ok === false ? rapl.reason : "no RAPL"}`,
  };
  if (packages) {
    const measured =
      idleWatts !== undefined && energyBefore && energyAfter
        ? { idle: idleWatts, busy: joulesBetween(packages, energyBefore, energyAfter) / wallSeconds }
        : undefined;
    const logical = cpus().length;
    const perCore = measured ? measured.idle / logical + Math.max(0, measured.busy - measured.idle) : 0;
    if (!measured) power = { source: "configured", why: "not measured: a RAPL counter could not be read" };
    // Counters that did not move (a fake or a broken driver) measure nothing.
    else if (!(perCore > 0)) power = { source: "configured", why: "not measured: the RAPL counters did not move" };
    else {
      wattsPerCore = perCore;
      power = {
        source: "rapl",
        packages: packages.map((p) => p.zone),
        idleWatts: measured.idle,
        busyWatts: measured.busy,
        cpus: logical,
      };
    }
  }
  const calibration: Calibration = {
    fuelPerSecond,
    wattsPerCore,
    joulesPerFuel: wattsPerCore / fuelPerSecond,
    measuredAt: new Date().toISOString(),
    machine,
    power,
  };
  await writeFile(join(options.dataDir, CALIBRATION_FILE), `${JSON.stringify(calibration, null, 2)}\n`);
  return calibration;
}
