/**
 * The function manifest, `joule.json` beside a function's source, and the
 * deploy request's overrides. One zod schema is the source of truth for
 * both validation and the docs.
 */
import { z } from "zod";
import { checkMountPath, checkSourcePath } from "./capabilities/files-paths.ts";
import { narrowCapabilities } from "./capabilities/narrow.ts";
import { parseOriginPattern } from "./capabilities/origin-pattern.ts";
import { JouleError } from "./errors.ts";

export const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,62}$/;

const MiB = 1024 * 1024;

export const functionNameSchema = z
  .string()
  .regex(FUNCTION_NAME, "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter");

/**
 * A function name that came from outside (a URL, a request body), checked
 * before anything uses it: a name is the only caller text that ever becomes
 * part of a store path (store/function-store.ts).
 */
export function checkFunctionName(name: string): string {
  if (FUNCTION_NAME.test(name)) return name;
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  throw new JouleError(
    "JOULE_ERR_REQUEST_INVALID",
    `${shown} is not a function name: names are 1-63 characters of a-z, 0-9 and '-', starting with a letter`,
    { problems: ["name: must be 1-63 characters of a-z, 0-9 and '-', starting with a letter"] },
  );
}

/** Environment variables handed to the function as `env`; a value `secret://<name>` is read from the host's secret store. */
export const envSchema = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "names are letters, digits and '_', not starting with a digit"),
  z.string().max(64 * 1024),
);

export const limitsSchema = z
  .object({
    /** Wall-clock limit of one invocation. */
    timeoutMs: z.number().int().min(1).max(900_000).optional(),
    /** Linear memory one instance may grow to, in MiB (64 KiB pages, rounded down). */
    memoryMb: z.number().int().min(1).max(4096).optional(),
    /** Fuel one invocation may use (about one unit per Wasm instruction). */
    fuel: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** Largest request body accepted for this function (bytes). */
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .max(1024 * MiB)
      .optional(),
    /** The guest's outgoing HTTP, per invocation (capabilities/outbound-http.ts has the defaults). */
    outbound: z
      .object({
        /** Requests one invocation may make, each redirect hop counted (default 32). */
        requests: z.number().int().min(1).max(1000).optional(),
        /** Largest request body (default 4 MiB). */
        requestBytes: z
          .number()
          .int()
          .min(0)
          .max(64 * MiB)
          .optional(),
        /** Largest response body (default 8 MiB). */
        responseBytes: z
          .number()
          .int()
          .min(0)
          .max(64 * MiB)
          .optional(),
        /** Time for one request with its redirects (default 10 s); the invocation's timeoutMs still bounds all. */
        timeoutMs: z.number().int().min(1).max(900_000).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/**
 * How many instances of a function run, and for how long they stay warm.
 * Instances live in the worker threads: at most one per function per worker
 * is kept warm, so `minInstances` above the worker count is capped there.
 */
export const scalingSchema = z
  .object({
    /** Instances made at deploy and at host start, and never dropped for idleness. */
    minInstances: z.number().int().min(0).max(256).default(0),
    /** Invocations of this function running at once; more wait in its queue. */
    maxInstances: z.number().int().min(1).max(10_000).optional(),
    /** Invocations that may wait for one of `maxInstances`; past it, JOULE_ERR_CAPACITY. */
    maxQueue: z.number().int().min(0).max(100_000).default(100),
    /** An instance idle this long is dropped (scale to zero); compiled code stays cached. */
    idleTimeoutMs: z.number().int().min(1000).max(86_400_000).default(300_000),
  })
  .strict();

/** "reuse": an instance keeps its state across requests (Workers/Lambda); "per-request": a fresh one each time. */
export const isolationSchema = z.enum(["reuse", "per-request"]);

/** The defaults, also for records stored before these settings existed. */
export const DEFAULT_SCALING = { minInstances: 0, maxQueue: 100, idleTimeoutMs: 300_000 } as const;

/** An `outboundHttp` entry: `scheme://host[:port]` (host/src/capabilities/origin-pattern.ts). */
export const originPatternSchema = z.string().superRefine((value, ctx) => {
  try {
    parseOriginPattern(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
  }
});

/**
 * `files`: guest path → source, relative to the function's directory. A
 * mount ending in `/` is a directory (`"/data/": "assets/"`), any other a
 * single file (`"/config.json": "config/prod.json"`).
 */
export const filesGrantSchema = z
  .record(
    z.string().superRefine((value, ctx) => {
      const problem = checkMountPath(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    z.string().superRefine((value, ctx) => {
      const problem = checkSourcePath(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  )
  .refine((files) => Object.keys(files).length <= 32, "at most 32 mounts");

export const capabilitiesSchema = z
  .object({
    /** Names of the key-value stores the function may use. */
    kv: z
      .array(z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "store names are 1-63 of a-z, 0-9 and '-'"))
      .max(32)
      .default([]),
    /** Origins the function may send HTTP requests to. */
    outboundHttp: z.array(originPatternSchema).max(64).default([]),
    /** Read-only files shipped with the function, by guest path. */
    files: filesGrantSchema.default({}),
  })
  .strict();

export type Capabilities = z.infer<typeof capabilitiesSchema>;

/** An energy budget, as the seed documents' `energy_budget`: joules, optionally refilled every period. */
export const energyBudgetSchema = z
  .object({
    joules: z.number().positive().max(1e12),
    per: z
      .string()
      // At least one unit (a zero period would refill forever), at most 999,999 of them (ms fit an int64).
      .regex(/^[1-9]\d{0,5}(s|m|h|d|w)$/, 'a period such as "30s", "15m", "1h", "1d" or "1w" (1 to 999999 units)')
      .optional(),
  })
  .strict();

export type EnergyBudget = z.infer<typeof energyBudgetSchema>;

export const manifestSchema = z
  .object({
    $schema: z.string().optional(),
    name: functionNameSchema,
    /** Entry module, relative to the manifest. */
    main: z.string().min(1).default("src/index.ts"),
    env: envSchema.default({}),
    limits: limitsSchema.default({}),
    scaling: scalingSchema.default(DEFAULT_SCALING),
    isolation: isolationSchema.default("reuse"),
    /**
     * Start instances from a snapshot of memory taken after init() at deploy
     * (runtime/snapshot.ts); false runs init() in every new instance instead.
     */
    snapshot: z.boolean().default(true),
    /** What the function may reach beyond its env, clocks, random and logs. Deny by default. */
    capabilities: capabilitiesSchema.prefault({}),
    /** Anyone may invoke it, without an API key. */
    public: z.boolean().default(false),
    /** The function's energy budget; none means unlimited. */
    energyBudget: energyBudgetSchema.optional(),
  })
  .strict();

export type Manifest = z.infer<typeof manifestSchema>;

/**
 * What a deploy sets besides the component: the manifest's settings (the CLI
 * sends them from joule.json). An absent energyBudget leaves the function's
 * budget as it is.
 */
export const deploySettingsSchema = manifestSchema
  .pick({
    env: true,
    limits: true,
    scaling: true,
    isolation: true,
    snapshot: true,
    public: true,
    capabilities: true,
    energyBudget: true,
  })
  .extend({
    /**
     * The operator's narrowing of `capabilities` (host/src/capabilities/narrow.ts): for each
     * capability given, the function gets this subset; never more than `capabilities` declares.
     */
    narrow: z
      .object({
        kv: capabilitiesSchema.shape.kv.removeDefault().optional(),
        outboundHttp: capabilitiesSchema.shape.outboundHttp.removeDefault().optional(),
        files: capabilitiesSchema.shape.files.removeDefault().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type DeploySettings = z.infer<typeof deploySettingsSchema>;

/** The settings a function version is made of: all but the energy budget, which the ledger keeps. */
export type FunctionSettings = Omit<DeploySettings, "energyBudget" | "narrow">;

/** The settings of the version a deploy makes: the declared capabilities as the deploy narrows them. */
export function functionSettings(settings: Omit<DeploySettings, "narrow"> & Partial<DeploySettings>): FunctionSettings {
  const { env, limits, scaling, isolation, snapshot } = settings;
  const capabilities = narrowCapabilities(settings.capabilities, settings.narrow);
  return { env, limits, scaling, isolation, snapshot, public: settings.public, capabilities };
}
export type Scaling = z.infer<typeof scalingSchema>;
export type Isolation = z.infer<typeof isolationSchema>;
export type Limits = z.infer<typeof limitsSchema>;

/** Lists every failing field path, e.g. `limits.timeoutMs: Too small`. */
export function describeIssues(error: z.ZodError, root = ""): string[] {
  return error.issues.map((issue) => {
    const path = [root, ...issue.path.map(String)].filter(Boolean).join(".");
    return `${path || "(root)"}: ${issue.message}`;
  });
}

export function parseManifest(value: unknown, source = "joule.json"): Manifest {
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error);
    throw new JouleError("JOULE_ERR_MANIFEST_INVALID", `${source} is invalid: ${problems.join("; ")}`, { problems });
  }
  return parsed.data;
}
