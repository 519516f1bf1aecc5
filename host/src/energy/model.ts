/**
 * The energy model: energy = fuel × joules-per-fuel.
 *
 * joules-per-fuel = watts per core ÷ fuel per second per core. `joule
 * calibrate` measures fuel per second on this machine with a CPU-bound
 * guest and writes `calibration.json` into the data dir; watts per core is
 * measured there too where the CPU's RAPL counters can be read
 * (calibrate.ts), and otherwise comes from config (JOULE_WATTS_PER_CORE,
 * default 4.5 W: a server CPU's TDP over its cores, e.g. 280 W / 64).
 * Without a calibration the host uses DEFAULT_FUEL_PER_SECOND, measured on
 * the reference machine.
 *
 * Limits of the model: it charges CPU time only (not memory held, I/O or
 * idle instances), at the package's average power per core, and fuel is an
 * instruction count, not a cycle count (a division costs what an add does).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

/**
 * Fuel per CPU-second of the calibration workload on the reference machine (2 × AMD EPYC, Node 24):
 * 8.63–8.76 × 10^9 in three runs of `joule calibrate` since structure is free (derivation 11).
 */
export const DEFAULT_FUEL_PER_SECOND = 8.7e9;

export const calibrationSchema = z
  .object({
    fuelPerSecond: z.number().positive(),
    wattsPerCore: z.number().positive(),
    joulesPerFuel: z.number().positive(),
    measuredAt: z.string(),
    machine: z.string(),
    /** Where wattsPerCore came from: measured (RAPL), or the configured value and why (absent: before RAPL). */
    power: z
      .discriminatedUnion("source", [
        z
          .object({
            source: z.literal("rapl"),
            packages: z.array(z.string()),
            idleWatts: z.number().nonnegative(),
            busyWatts: z.number().nonnegative(),
            cpus: z.number().int().positive(),
          })
          .strict(),
        z.object({ source: z.literal("configured"), why: z.string() }).strict(),
      ])
      .optional(),
  })
  .strict();

export type Calibration = z.infer<typeof calibrationSchema>;

export const CALIBRATION_FILE = "calibration.json";

export interface EnergyModel {
  joulesPerFuel: number;
  source: "calibrated" | "default";
  calibration?: Calibration;
}

export async function loadEnergyModel(dataDir: string, wattsPerCore: number): Promise<EnergyModel> {
  const text = await readFile(join(dataDir, CALIBRATION_FILE), "utf8").catch(() => undefined);
  if (text !== undefined) {
    const parsed = calibrationSchema.safeParse(JSON.parse(text));
    if (parsed.success) {
      // A calibration measures speed, and power where RAPL let it; otherwise the operator states power.
      const watts = parsed.data.power?.source === "rapl" ? parsed.data.wattsPerCore : wattsPerCore;
      return {
        joulesPerFuel: watts / parsed.data.fuelPerSecond,
        source: "calibrated",
        calibration: parsed.data,
      };
    }
  }
  return { joulesPerFuel: wattsPerCore / DEFAULT_FUEL_PER_SECOND, source: "default" };
}

/** Microjoules for an amount of fuel, rounded up: a charge is never zero for work done. */
export function microjoules(model: EnergyModel, fuel: number): number {
  return Math.ceil(fuel * model.joulesPerFuel * 1e6);
}
