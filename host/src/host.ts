/**
 * A running Joule host: the store, the registry of deployed functions, the
 * worker pool and the HTTP server, started and stopped in the right order.
 */
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { AuditLog } from "./auth/audit.ts";
import { HOST_ID, KeyStore, openAuthDb, SCOPES } from "./auth/keys.ts";
import { SecretStore } from "./capabilities/secrets.ts";
import type { Config } from "./config.ts";
import { EnergyLedger } from "./energy/ledger.ts";
import { loadEnergyModel } from "./energy/model.ts";
import { Invoker } from "./invoke/invoker.ts";
import { prewarm } from "./pool/prewarm.ts";
import { snapshotInPool } from "./pool/snapshot-task.ts";
import { WorkerPool } from "./pool/worker-pool.ts";
import { FunctionRegistry } from "./runtime/registry.ts";
import { buildApp } from "./server/app.ts";
import { Authenticator } from "./server/auth.ts";
import { HostMetrics } from "./server/metrics.ts";
import { listenForMetrics } from "./server/metrics-listener.ts";
import { FunctionStore } from "./store/function-store.ts";
import { lockDataDir } from "./store/lock.ts";
import { probeDatabase, probeDir } from "./store/probes.ts";
import { storageError, storageFault } from "./store/storage-error.ts";
import { StorageHealth } from "./store/storage-health.ts";

export interface Host {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly registry: FunctionRegistry;
  readonly ledger: EnergyLedger;
  readonly keys: KeyStore;
  readonly secrets: SecretStore;
  /** The operator's metrics listener (JOULE_METRICS_ADDR), when one is configured. */
  readonly metricsUrl: string | undefined;
  /** An API key with every scope, made on the first start of a data dir; undefined afterwards. */
  readonly bootstrapKey: string | undefined;
  close(): Promise<void>;
}

/**
 * Starts a host. `prepare` runs after stored functions are loaded and before
 * the port opens (the CLI deploys the example functions there).
 */
export async function startHost(
  config: Config,
  prepare?: (parts: { registry: FunctionRegistry; ledger: EnergyLedger }) => Promise<void>,
  logStream?: NodeJS.WritableStream,
): Promise<Host> {
  let unlock: () => void;
  try {
    unlock = lockDataDir(config.dataDir);
  } catch (error) {
    throw startFailure(error);
  }
  try {
    const host = await startLocked(config, prepare, logStream);
    return {
      ...host,
      async close() {
        try {
          await host.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (error) {
    unlock();
    throw startFailure(error);
  }
}

/** A start the data dir refused (full, read-only): coded, so the CLI says what to do. */
function startFailure(error: unknown): unknown {
  const fault = storageFault(error);
  return fault ? storageError("functions", fault, "the host could not start on its data dir") : error;
}

async function startLocked(
  config: Config,
  prepare: ((parts: { registry: FunctionRegistry; ledger: EnergyLedger }) => Promise<void>) | undefined,
  logStream: NodeJS.WritableStream | undefined,
): Promise<Host> {
  const storage = new StorageHealth(config.dataDir);
  const store = new FunctionStore(config.dataDir);
  await store.open();
  const secrets = SecretStore.open({ dataDir: config.dataDir, keyFile: config.secretsKeyFile }, storage);
  const registry = new FunctionRegistry(store, {
    defaultMemoryMb: config.defaultMemoryMb,
    secrets,
    dnsServers: config.dnsServers,
  });
  const model = await loadEnergyModel(config.dataDir, config.wattsPerCore);
  const ledger = new EnergyLedger(config.dataDir, Date.now, storage);
  const authDb = openAuthDb(config.dataDir);
  const keys = new KeyStore(authDb, storage);
  const audit = new AuditLog(authDb, storage);
  // While a store fails, these find out each second whether it can be written again.
  storage.probe("energy.db", () => ledger.probe());
  storage.probe("auth.db", () => audit.probe());
  storage.probe("secrets.db", () => secrets.probe());
  storage.probe("kv.db", () => probeDatabase(join(config.dataDir, "kv.db")));
  storage.probe("functions", () => probeDir(store.tmpDir));
  const auth = new Authenticator({ keys, audit, adminToken: config.adminToken });
  // The first start makes a key with every scope; it is handed back once and never stored or logged.
  const bootstrapKey = keys.count() === 0 ? keys.create({ name: "bootstrap", scopes: [...SCOPES] }).key : undefined;
  const pool = new WorkerPool({ workers: config.workers, concurrency: config.workerConcurrency });
  const metrics = new HostMetrics(pool, ledger, storage, audit);
  const invoker = new Invoker({ config, pool, ledger, model, audit, metrics });
  let ready = false;
  const warmUp = async (name: string) => {
    const live = registry.get(name);
    if (live) await prewarm(pool, live, config);
  };
  const app = buildApp({
    config,
    registry,
    pool,
    invoker,
    metrics,
    ledger,
    model,
    auth,
    audit,
    keys,
    storage,
    secrets,
    notReady: () => (!ready ? "starting" : ledger.refusing ? "energy ledger cannot write" : undefined),
    logStream,
  });
  storage.useLog({
    error: (fields, message) => app.log.error(fields, message),
    info: (fields, message) => app.log.info(fields, message),
  });

  // Once per start, never the key itself: where it is, so the operator keeps a copy apart from the data dir.
  const { path, id, generated, migrated } = secrets.keyInfo;
  app.log.info(
    { secretsKeyFile: path, keyId: id, generated, migrated },
    generated
      ? "secrets key made: keep a copy of this file apart from the data dir, the secrets cannot be read without it"
      : "secrets key read",
  );

  registry.onRetired((image) => pool.retire(image));
  registry.useSnapshotter((live) =>
    snapshotInPool(pool, live, config, {
      log(line, { record }) {
        const level = line.stream === "stderr" || line.stream === "error" || line.stream === "warn" ? "warn" : "info";
        app.log[level](
          { function: record.name, version: record.version, guest: line.stream, phase: "init" },
          line.message,
        );
      },
      // init runs for the host at deploy; the deploy's own audit entry names who asked for it.
      denied(denial, { record }, requestId) {
        audit.recordDenial(
          denial,
          { principal: HOST_ID, function: record.name, requestId, ip: null },
          "init at deploy: ",
        );
      },
    }),
  );
  const failed = await registry.load();
  for (const { name, problem } of failed)
    app.log.error({ function: name, problem }, "stored function could not be loaded");
  if (prepare) await prepare({ registry, ledger });
  await Promise.all(registry.list().map((record) => warmUp(record.name)));
  const address = await app.listen({ host: config.host, port: config.port });
  const metricsListener = config.metricsAddr ? await listenForMetrics(config.metricsAddr, metrics) : undefined;
  ready = true;
  app.log.info(
    { functions: registry.list().length, workers: config.workers, dataDir: config.dataDir },
    "joule host ready",
  );

  return {
    url: address,
    app,
    registry,
    ledger,
    keys,
    secrets,
    bootstrapKey,
    metricsUrl: metricsListener?.url,
    async close() {
      ready = false;
      await metricsListener?.close();
      await app.close();
      // Whatever fails, the rest still closes; the first failure is what close() throws.
      const steps = [
        // No invocation settles once the server has closed: commit their charges first.
        () => ledger.close(),
        () => metrics.close(),
        () => pool.close(),
        () => registry.close(),
        () => audit.close(),
        () => authDb.close(),
        () => secrets.close(),
        () => storage.close(),
      ];
      const failures: unknown[] = [];
      for (const step of steps) {
        try {
          await step();
        } catch (error) {
          failures.push(error);
        }
      }
      if (failures.length > 0) throw failures[0];
    },
  };
}
