/**
 * `joule calibrate`: measures fuel per second on one core of this machine,
 * running a CPU-bound metered workload (a hash loop and a quicksort,
 * alternately) for a few seconds, and writes the energy model's
 * calibration into the data dir.
 */
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { parse } from "@bytecodealliance/jco";
import { instrument } from "../fuel/instrument.ts";
import { FuelMeter, FuelPort, instantiateMetered } from "../runtime/fuel-meter.ts";
import { CALIBRATION_FILE, type Calibration } from "./model.ts";

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
  wattsPerCore: number;
  seconds: number;
}

export async function calibrate(options: CalibrateOptions): Promise<Calibration> {
  const port = new FuelPort();
  const module = new WebAssembly.Module(instrument(await parse(WORKLOAD)).bytes as Uint8Array<ArrayBuffer>);
  const instance = instantiateMetered(module, {}, port);
  const run = instance.exports.run as () => number;
  const budget = 1n << 60n;
  // Warm up: let V8 tier the code up before measuring.
  let meter = new FuelMeter(budget);
  meter.attach(port);
  for (let i = 0; i < 5; i++) run();
  meter.settle();
  meter = new FuelMeter(budget);
  meter.attach(port);
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < options.seconds * 1000) {
    run();
    elapsed = performance.now() - started;
  }
  const fuelPerSecond = Number(meter.settle().used) / (elapsed / 1000);
  const calibration: Calibration = {
    fuelPerSecond: Math.round(fuelPerSecond),
    wattsPerCore: options.wattsPerCore,
    joulesPerFuel: options.wattsPerCore / fuelPerSecond,
    measuredAt: new Date().toISOString(),
    machine: `${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
  };
  await writeFile(join(options.dataDir, CALIBRATION_FILE), `${JSON.stringify(calibration, null, 2)}\n`);
  return calibration;
}
