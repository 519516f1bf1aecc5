/**
 * Host configuration: defaults in one place, read from the environment,
 * validated once, frozen. Unknown `JOULE_*` variables are rejected by name so
 * a typo does not silently fall back to a default.
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { z } from "zod";
import { describeIssues } from "./manifest.ts";
import { parseRegistryHost } from "./oci/reference.ts";

const MiB = 1024 * 1024;

/** A comma-separated list in one variable, as its trimmed, non-empty items. */
const commaList = () =>
  z
    .string()
    .default("")
    .transform((list) =>
      list
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean),
    );

export const configSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    dataDir: z.string().min(1).default(".joule"),
    workers: z.coerce.number().int().min(1).max(256).default(availableParallelism()),
    /**
     * Invocations one worker runs at once, each on its own instance (about
     * 4 MiB of memory each for a JS function): while some wait on I/O the
     * others run. Past it on every worker, invocations queue.
     */
    workerConcurrency: z.coerce.number().int().min(1).max(4096).default(256),
    maxBodyBytes: z.coerce
      .number()
      .int()
      .min(1)
      .max(1024 * MiB)
      .default(6 * MiB),
    maxUploadBytes: z.coerce
      .number()
      .int()
      .min(1)
      .max(4096 * MiB)
      .default(256 * MiB),
    defaultTimeoutMs: z.coerce.number().int().min(1).max(900_000).default(10_000),
    /** Average power of one core under load, for the energy model (host/src/energy/model.ts). */
    wattsPerCore: z.coerce.number().positive().max(1000).default(4.5),
    /** Linear memory an instance may grow to when its function sets no `limits.memoryMb`. */
    defaultMemoryMb: z.coerce.number().int().min(1).max(4096).default(256),
    /** Fuel an invocation may use when its function sets no `limits.fuel` (README, "Fuel and limits"). */
    defaultFuel: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(10_000_000_000),
    maxLogBytesPerInvocation: z.coerce
      .number()
      .int()
      .min(0)
      .default(64 * 1024),
    /** An operator credential with every scope, beside the API keys (for automation that cannot store a key). */
    adminToken: z.string().min(16, "must be at least 16 characters").optional(),
    /** The largest component layer a deploy by reference pulls (the manifest limit is fixed at 4 MiB). */
    ociMaxLayerBytes: z.coerce
      .number()
      .int()
      .min(1)
      .max(4096 * MiB)
      .default(256 * MiB),
    /** A Docker-style auth file (`{"auths": {...}}`) with the credentials of the registries deploys pull from. */
    registryAuthFile: z.string().min(1).optional(),
    /** Registries (host:port, comma-separated) reached over plain HTTP although not on loopback. */
    insecureRegistries: commaList(),
    /**
     * Registries (host:port, or host for any port; comma-separated) that a
     * deploy by reference may pull from although their address is not
     * public (private, loopback, link-local...; never cloud metadata).
     * Redirect targets and token services are connections of their own and
     * must be listed too when they are private.
     */
    privateRegistries: commaList().pipe(
      z.array(
        z.string().refine((entry) => parseRegistryHost(entry) !== undefined, "must be host, host:port or [ipv6]:port"),
      ),
    ),
    /**
     * DNS servers (ip:port, comma-separated) that outbound HTTP and registry
     * pulls resolve names with, instead of the system resolver (for
     * split-horizon DNS, and for tests that script answers).
     */
    dnsServers: commaList(),
    /**
     * Directories (comma-separated) the operator credential (JOULE_ADMIN_TOKEN)
     * may deploy from by path; empty: no deploy reads the host's disk.
     */
    deployDirs: commaList(),
    /**
     * `host:port` of a second listener that serves GET /metrics without a key,
     * for a Prometheus on the operator's network; unset: /metrics needs metrics:read.
     */
    metricsAddr: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port")
      .optional(),
    /**
     * The file holding the key that seals secrets.db's values (32 random
     * bytes, base64). Unset: `<dataDir>.secrets-key`, beside the data dir and
     * never in it, made at first start (host/src/capabilities/secrets-key.ts).
     */
    secretsKeyFile: z.string().min(1).optional(),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .strict();

export type Config = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;

const ENV_KEYS: Record<string, keyof ConfigInput> = {
  HOST: "host",
  PORT: "port",
  JOULE_DATA_DIR: "dataDir",
  JOULE_WORKERS: "workers",
  JOULE_WORKER_CONCURRENCY: "workerConcurrency",
  JOULE_MAX_BODY_BYTES: "maxBodyBytes",
  JOULE_MAX_UPLOAD_BYTES: "maxUploadBytes",
  JOULE_DEFAULT_TIMEOUT_MS: "defaultTimeoutMs",
  JOULE_DEFAULT_FUEL: "defaultFuel",
  JOULE_DEFAULT_MEMORY_MB: "defaultMemoryMb",
  JOULE_WATTS_PER_CORE: "wattsPerCore",
  JOULE_MAX_LOG_BYTES: "maxLogBytesPerInvocation",
  JOULE_ADMIN_TOKEN: "adminToken",
  JOULE_OCI_MAX_LAYER_BYTES: "ociMaxLayerBytes",
  JOULE_REGISTRY_AUTH_FILE: "registryAuthFile",
  JOULE_INSECURE_REGISTRIES: "insecureRegistries",
  JOULE_PRIVATE_REGISTRIES: "privateRegistries",
  JOULE_DNS_SERVERS: "dnsServers",
  JOULE_DEPLOY_DIRS: "deployDirs",
  JOULE_METRICS_ADDR: "metricsAddr",
  JOULE_SECRETS_KEY_FILE: "secretsKeyFile",
  LOG_LEVEL: "logLevel",
};

/**
 * The CLI's own settings (host/src/cli/args.ts): where to send requests and
 * with which key. The README has users export them in the shell they also
 * start a host from, so they are known here and ignored, not typos.
 */
export const CLIENT_SETTINGS = ["JOULE_HOST", "JOULE_API_KEY"] as const;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The known name `name` is most likely a typo of, if one is within two edits. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const input: Record<string, string> = {};
  const client: readonly string[] = CLIENT_SETTINGS;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === "") continue;
    const key = ENV_KEYS[name];
    if (key) input[key] = value;
    else if (name.startsWith("JOULE_") && !client.includes(name)) {
      const known = [...Object.keys(ENV_KEYS), ...client];
      const guess = closest(name, known);
      throw new ConfigError(
        `unknown setting ${name}${guess ? ` (did you mean ${guess}?)` : ""}; host settings: ${Object.keys(ENV_KEYS).join(", ")}; client settings, which the host ignores: ${client.join(", ")}`,
      );
    }
  }
  return input;
}

export function loadConfig(input: ConfigInput = {}): Config {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, "config").join("; "));
  const { secretsKeyFile } = parsed.data;
  return Object.freeze({
    ...parsed.data,
    dataDir: resolve(parsed.data.dataDir),
    deployDirs: parsed.data.deployDirs.map((dir) => resolve(dir)),
    // Absolute, so that workers and the CLI read the same file whatever their working directory.
    ...(secretsKeyFile === undefined ? {} : { secretsKeyFile: resolve(secretsKeyFile) }),
  });
}
