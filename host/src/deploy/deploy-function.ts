/**
 * One deploy, whoever asks for it (the admin API today; the dev loop and
 * triggers later): host-wide limits on the settings, the narrowing of
 * shipped files, the energy budget, the registry's deploy, then what the
 * workers should know at once (the new version's images, prewarmed
 * instances).
 */
import type { Principal } from "../auth/keys.ts";
import { underMount } from "../capabilities/files-paths.ts";
import type { Config } from "../config.ts";
import { budgetInput, type EnergyLedger } from "../energy/ledger.ts";
import { JouleError } from "../errors.ts";
import { functionSettings } from "../manifest.ts";
import { prewarm } from "../pool/prewarm.ts";
import type { WorkerPool } from "../pool/worker-pool.ts";
import type { FunctionRegistry } from "../runtime/registry.ts";
import type { HostMetrics } from "../server/metrics.ts";
import type { FunctionRecord } from "../store/function-store.ts";
import type { DeploySource } from "./sources.ts";

export interface DeployDeps {
  config: Config;
  registry: FunctionRegistry;
  metrics: HostMetrics;
  ledger: EnergyLedger;
  pool: WorkerPool;
}

export async function deployFunction(
  deps: DeployDeps,
  name: string,
  source: DeploySource,
  by: Pick<Principal, "id" | "functions">,
): Promise<{ record: FunctionRecord; changed: boolean; existed: boolean }> {
  const { config, registry, metrics, ledger, pool } = deps;
  const { component, config: settingsIn, files, artifact } = source;
  const maxBody = settingsIn.limits.maxBodyBytes;
  if (maxBody !== undefined && maxBody > config.maxBodyBytes) {
    throw new JouleError(
      "JOULE_ERR_MANIFEST_INVALID",
      `limits.maxBodyBytes ${maxBody} is over this host's limit of ${config.maxBodyBytes}`,
      { problems: [`limits.maxBodyBytes: at most ${config.maxBodyBytes}`] },
    );
  }
  const existed = registry.get(name) !== undefined;
  const settings = functionSettings(settingsIn);
  // Files of mounts the deploy narrowed away are not shipped.
  const removed = Object.keys(settingsIn.capabilities.files).filter((m) => !(m in settings.capabilities.files));
  const shipped = files.filter((file) => !removed.some((mount) => underMount(file.path, mount)));
  // Refused before anything changes when the budget could not be written after the swap.
  if (settingsIn.energyBudget) ledger.commit();
  const { record, changed } = await registry.deploy({
    name,
    component,
    files: shipped,
    artifact,
    owner: by.id,
    limitedTo: by.functions,
    ...settings,
  });
  if (settingsIn.energyBudget) ledger.setBudget("function", name, budgetInput(settingsIn.energyBudget));
  if (changed) {
    metrics.forget(name);
    const live = registry.get(name);
    if (live) {
      // The new version's images are read by the workers now, not by its first request.
      pool.preload(live.image);
      await prewarm(pool, live, config);
    }
  }
  return { record, changed, existed };
}
