/** `joule calibrate`: measure fuel per second on one core here (and power per core, where RAPL can be read), for the energy model. */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { configFromEnv, loadConfig } from "../../config.ts";
import { calibrate } from "../../energy/calibrate.ts";
import { parse, usageError } from "../args.ts";
import type { Output } from "../output.ts";

export async function calibrateCommand(args: string[], out: Output): Promise<void> {
  const { values } = parse(args, {
    "data-dir": { type: "string" },
    seconds: { type: "string", default: "3" },
    watts: { type: "string" },
    powercap: { type: "string" },
  });
  const input = configFromEnv();
  if (values["data-dir"] !== undefined) input.dataDir = values["data-dir"] as string;
  if (values.watts !== undefined) input.wattsPerCore = values.watts as string;
  const config = loadConfig(input);
  const secondsToRun = Number(values.seconds);
  if (!(secondsToRun > 0 && secondsToRun <= 60)) throw usageError("--seconds must be between 0 and 60");
  await mkdir(config.dataDir, { recursive: true });
  out.step(`measuring fuel per second on one core for ${secondsToRun}s`);
  const result = await calibrate({
    dataDir: config.dataDir,
    wattsPerCore: config.wattsPerCore,
    wattsGiven: values.watts !== undefined,
    seconds: secondsToRun,
    ...(values.powercap === undefined ? {} : { powercapRoot: values.powercap as string }),
  });
  const power =
    result.power?.source === "rapl"
      ? `${result.wattsPerCore.toFixed(2)} W/core measured (RAPL: ${result.power.idleWatts.toFixed(1)} W idle, ${result.power.busyWatts.toFixed(1)} W with one core busy, ${result.power.cpus} CPUs)`
      : `${result.wattsPerCore} W/core configured (${result.power?.why ?? "given"})`;
  out.done(
    `${(result.fuelPerSecond / 1e9).toFixed(2)} × 10^9 fuel/s per core at ${power} → ${result.joulesPerFuel.toExponential(3)} J per fuel (${(result.joulesPerFuel * 1e15).toFixed(0)} µJ per 10^9 fuel); written to ${join(config.dataDir, "calibration.json")}`,
    { command: "calibrate", ...result },
  );
}
