/**
 * The CPU packages' energy counters, where the machine has them: Linux's
 * powercap interface to RAPL (`/sys/class/powercap/intel-rapl:N`, which AMD
 * processors use too since Linux 5.8). Each top-level zone named
 * `package-N` counts the package's energy in µJ in `energy_uj`, wrapping
 * around at `max_energy_range_uj`. Since 2020 kernels let only root read
 * them (a side channel otherwise): where they cannot be read, calibration
 * keeps the configured power.
 *
 * The root is a parameter so that a test can hand it a fake directory.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export const POWERCAP_ROOT = "/sys/class/powercap";

/** A top-level RAPL zone: `intel-rapl:0`, `amd-rapl:0`; subzones (`intel-rapl:0:0`) are parts of one. */
const PACKAGE_ZONE = /^(intel|amd)-rapl:\d+$/;

export interface RaplPackage {
  zone: string;
  energyPath: string;
  /** Where the counter wraps around, µJ. */
  maxRangeUj: number;
}

export type RaplProbe = { ok: true; packages: RaplPackage[] } | { ok: false; reason: string };

async function readNumber(path: string): Promise<number> {
  const text = (await readFile(path, "utf8")).trim();
  const value = Number(text);
  if (text === "" || !Number.isSafeInteger(value) || value < 0) throw new Error(`${path} does not hold a counter`);
  return value;
}

/** The package zones under `root` whose counters can be read, or why there are none. */
export async function probeRapl(root = POWERCAP_ROOT): Promise<RaplProbe> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return { ok: false, reason: `${root} does not exist` };
  }
  const packages: RaplPackage[] = [];
  const unreadable: string[] = [];
  for (const zone of entries.filter((entry) => PACKAGE_ZONE.test(entry)).sort()) {
    const dir = join(root, zone);
    const name = await readFile(join(dir, "name"), "utf8").catch(() => "");
    if (!name.trim().startsWith("package")) continue;
    try {
      const energyPath = join(dir, "energy_uj");
      await readNumber(energyPath);
      packages.push({ zone, energyPath, maxRangeUj: await readNumber(join(dir, "max_energy_range_uj")) });
    } catch {
      unreadable.push(zone);
    }
  }
  if (packages.length > 0) return { ok: true, packages };
  if (unreadable.length > 0) {
    return { ok: false, reason: `${unreadable.join(", ")} under ${root} cannot be read (root only on this kernel)` };
  }
  return { ok: false, reason: `no RAPL package zone under ${root}` };
}

/** Each package's counter now, µJ. */
export function readEnergy(packages: RaplPackage[]): Promise<number[]> {
  return Promise.all(packages.map((p) => readNumber(p.energyPath)));
}

/** Energy between two readings of one counter, µJ, across at most one wrap-around. */
export function energyBetween(before: number, after: number, maxRangeUj: number): number {
  return after >= before ? after - before : maxRangeUj - before + after;
}

/** Energy all packages used between two readings, J. */
export function joulesBetween(packages: RaplPackage[], before: number[], after: number[]): number {
  let uj = 0;
  packages.forEach((p, i) => {
    uj += energyBetween(before[i] as number, after[i] as number, p.maxRangeUj);
  });
  return uj / 1e6;
}
