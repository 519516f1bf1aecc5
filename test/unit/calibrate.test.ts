/**
 * `joule calibrate`'s power: measured from the CPU packages' RAPL counters
 * where they can be read, the configured power (and why) where not. This
 * machine has no readable RAPL, so the measured path runs against a fake
 * powercap directory whose counter a worker thread advances at a known
 * power while the calibration keeps the main thread busy.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { calibrate } from "../../host/src/energy/calibrate.ts";
import { loadEnergyModel } from "../../host/src/energy/model.ts";
import { energyBetween, probeRapl } from "../../host/src/energy/rapl.ts";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "joule-calibrate-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A powercap directory with one package zone (and the subzones and psys zone calibration must skip). */
async function fakePowercap(): Promise<{ root: string; counter: string }> {
  const root = await tempDir();
  const zone = (name: string, label: string) =>
    mkdir(join(root, name)).then(() => writeFile(join(root, name, "name"), `${label}\n`));
  await zone("intel-rapl:0", "package-0");
  await zone("intel-rapl:0:0", "core");
  await zone("intel-rapl:1", "psys");
  await writeFile(join(root, "intel-rapl:0", "max_energy_range_uj"), "262143328850\n");
  const counter = join(root, "intel-rapl:0", "energy_uj");
  await writeFile(counter, "1000\n");
  return { root, counter };
}

describe("joule calibrate's power", () => {
  it("keeps the configured power where no RAPL counters can be read, and says why", async () => {
    const dataDir = await tempDir();
    const result = await calibrate({ dataDir, wattsPerCore: 4.5, seconds: 0.2, powercapRoot: join(dataDir, "none") });
    expect(result.wattsPerCore).toBe(4.5);
    expect(result.power).toEqual({ source: "configured", why: expect.stringContaining("does not exist") });
    expect(result.joulesPerFuel).toBeCloseTo(4.5 / result.fuelPerSecond, 20);
    // This machine's own /sys/class/powercap, whatever it holds, gives a calibration too.
    const here = await calibrate({ dataDir, wattsPerCore: 4.5, seconds: 0.1, idleMs: 100 });
    expect(here.power?.source).toMatch(/^(rapl|configured)$/);
    // The host uses what was written: configured power from config.
    const model = await loadEnergyModel(dataDir, 3);
    if (here.power?.source === "configured") expect(model.joulesPerFuel).toBe(3 / here.fuelPerSecond);
  });

  it("does not measure what the operator gave with --watts", async () => {
    const { root } = await fakePowercap();
    const result = await calibrate({
      dataDir: await tempDir(),
      wattsPerCore: 2,
      wattsGiven: true,
      seconds: 0.1,
      powercapRoot: root,
    });
    expect(result).toMatchObject({ wattsPerCore: 2, power: { source: "configured", why: "given with --watts" } });
  });

  it("measures the packages' power where RAPL can be read, and the host then uses it", async () => {
    const { root, counter } = await fakePowercap();
    expect(await probeRapl(root)).toMatchObject({ ok: true, packages: [{ zone: "intel-rapl:0" }] });
    // 40 W: the counter advances 40 µJ per µs, written every 5 ms from another thread, by rename
    // (sysfs is never read half-written).
    const worker = new Worker(
      `const { renameSync, writeFileSync } = require("node:fs");
       const { workerData } = require("node:worker_threads");
       const start = performance.now();
       setInterval(() => {
         writeFileSync(workerData + ".next", String(1000 + Math.round((performance.now() - start) * 40000)));
         renameSync(workerData + ".next", workerData);
       }, 5);`,
      { eval: true, workerData: counter },
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const dataDir = await tempDir();
      const result = await calibrate({ dataDir, wattsPerCore: 4.5, seconds: 0.5, powercapRoot: root, idleMs: 300 });
      expect(result.power).toMatchObject({ source: "rapl", packages: ["intel-rapl:0"], cpus: cpus().length });
      if (result.power?.source !== "rapl") throw new Error("not measured");
      // Idle and busy both about 40 W: a core's share is 40 W over the CPUs, plus nothing busy adds.
      expect(result.power.idleWatts).toBeGreaterThan(30);
      expect(result.power.idleWatts).toBeLessThan(50);
      expect(result.wattsPerCore).toBeGreaterThan(result.power.idleWatts / cpus().length - 1);
      expect(result.wattsPerCore).toBeLessThan(result.power.idleWatts / cpus().length + 12);
      const written = JSON.parse(await readFile(join(dataDir, "calibration.json"), "utf8"));
      expect(written.power.source).toBe("rapl");
      // Measured power wins over the configured one.
      expect((await loadEnergyModel(dataDir, 4.5)).joulesPerFuel).toBe(result.wattsPerCore / result.fuelPerSecond);
    } finally {
      await worker.terminate();
    }
  });

  it("reads counters that wrapped around", () => {
    expect(energyBetween(100, 250, 1000)).toBe(150);
    expect(energyBetween(900, 50, 1000)).toBe(150);
  });

  it("says when the counters are there but cannot be read", async () => {
    const { root, counter } = await fakePowercap();
    await rm(counter);
    await mkdir(counter); // reading a directory fails as an unreadable file does
    expect(await probeRapl(root)).toEqual({ ok: false, reason: expect.stringContaining("cannot be read") });
  });
});
