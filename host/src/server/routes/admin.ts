/**
 * The admin API, `/v1/functions`: deploy (PUT, from an upload, a path on
 * the host's disk, or an OCI reference the host pulls), list, show and
 * delete functions. Every body is validated
 * with zod and every failing field is named.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import {
  collectFiles,
  FILE_FIELD,
  MAX_FILE_BYTES,
  MAX_FILES,
  type ShippedFile,
} from "../../capabilities/files-bundle.ts";
import { underMount } from "../../capabilities/files-paths.ts";
import type { Config } from "../../config.ts";
import { budgetInput, type EnergyLedger } from "../../energy/ledger.ts";
import { JouleError } from "../../errors.ts";
import {
  type DeploySettings,
  deploySettingsSchema,
  describeIssues,
  functionNameSchema,
  functionSettings,
} from "../../manifest.ts";
import { type Artifact, shippedFiles } from "../../oci/artifact.ts";
import { resolveForDeploy } from "../../oci/deploy-source.ts";
import { prewarm } from "../../pool/prewarm.ts";
import type { Scheduler } from "../../pool/scheduler.ts";
import type { FunctionRegistry } from "../../runtime/registry.ts";
import type { FunctionRecord } from "../../store/function-store.ts";
import type { StorageHealth } from "../../store/storage-health.ts";
import type { Authenticator } from "../auth.ts";
import type { HostMetrics } from "../metrics.ts";

export const deployJsonSchema = deploySettingsSchema
  .extend({
    /** A component already on the host's disk (relative paths from the host's working directory). */
    component: z.object({ path: z.string().min(1) }).strict(),
    /** The function's directory on the host's disk: where `capabilities.files` sources are read. */
    functionDir: z.string().min(1).optional(),
  })
  .strict();

/** Deploy by reference: the artifact's joule.json gives the settings; fields given here override it. */
export const deployRefSchema = deploySettingsSchema
  .partial()
  .extend({
    /** `oci://<registry>/<repository>:<tag>` or `...@sha256:<digest>`. */
    ref: z.string().min(1).max(1100),
  })
  .strict();

export interface AdminDeps {
  config: Config;
  auth: Authenticator;
  registry: FunctionRegistry;
  metrics: HostMetrics;
  ledger: EnergyLedger;
  scheduler: Scheduler;
  storage: StorageHealth;
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error);
    throw new JouleError("JOULE_ERR_MANIFEST_INVALID", `${what} is invalid: ${problems.join("; ")}`, { problems });
  }
  return parsed.data;
}

function checkName(name: string): string {
  return parseOrThrow(z.object({ name: functionNameSchema }), { name }, `function name "${name}"`).name;
}

interface DeploySource {
  component: Uint8Array;
  config: DeploySettings;
  files: ShippedFile[];
  artifact?: { artifact: Artifact; ref: string } | undefined;
}

/** A shipped file's part, read no further than a file may be. */
async function readFilePart(stream: AsyncIterable<Buffer>, path: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > MAX_FILE_BYTES) {
      throw new JouleError("JOULE_ERR_MANIFEST_INVALID", `capabilities.files: ${path} is over ${MAX_FILE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

async function readMultipart(request: FastifyRequest): Promise<DeploySource> {
  let component: Uint8Array | undefined;
  let configJson: unknown = {};
  const files: ShippedFile[] = [];
  for await (const part of request.parts()) {
    if (part.type === "file" && part.fieldname.startsWith(FILE_FIELD)) {
      const path = part.fieldname.slice(FILE_FIELD.length);
      files.push({ path, bytes: await readFilePart(part.file, path) });
    } else if (part.type === "file") {
      if (part.fieldname !== "component") {
        throw new JouleError(
          "JOULE_ERR_REQUEST_INVALID",
          `unexpected file field "${part.fieldname}"; send the component as "component" and shipped files as "file:<guest path>"`,
        );
      }
      component = await part.toBuffer();
    } else if (part.fieldname === "config") {
      try {
        configJson = JSON.parse(String(part.value));
      } catch {
        throw new JouleError("JOULE_ERR_MANIFEST_INVALID", 'the "config" field is not valid JSON', {
          problems: ["config: not JSON"],
        });
      }
    } else {
      throw new JouleError(
        "JOULE_ERR_REQUEST_INVALID",
        `unexpected field "${part.fieldname}"; fields are "config" and "component"`,
      );
    }
  }
  if (!component) throw new JouleError("JOULE_ERR_REQUEST_INVALID", 'the upload has no "component" file field');
  return { component, config: parseOrThrow(deploySettingsSchema, configJson, "the deploy config"), files };
}

/**
 * A deploy by reference makes the host fetch from a URL the caller chose, so
 * it needs `artifacts:manage` besides `functions:manage`. The artifact holds
 * the component, its joule.json and its shipped files (capabilities.files).
 */
async function readFromRef(
  request: FastifyRequest,
  name: string,
  body: Record<string, unknown>,
  deps: AdminDeps,
): Promise<DeploySource> {
  deps.auth.require(request, "artifacts:manage", "PUT /v1/functions/:name (ref)", name);
  const { ref, ...given } = parseOrThrow(deployRefSchema, body, "the deploy request");
  const resolved = await resolveForDeploy(ref, {
    config: deps.config,
    local: (digest) => deps.registry.artifact(digest),
  });
  const fromArtifact = resolved.parsed.functionManifest;
  const defaults = deploySettingsSchema.parse({});
  const pick = <K extends Exclude<keyof DeploySettings, "narrow">>(key: K): DeploySettings[K] =>
    Object.hasOwn(body, key) ? (given[key] as DeploySettings[K]) : (fromArtifact?.[key] ?? defaults[key]);
  const config: DeploySettings = {
    env: pick("env"),
    limits: pick("limits"),
    scaling: pick("scaling"),
    isolation: pick("isolation"),
    snapshot: pick("snapshot"),
    public: pick("public"),
    capabilities: pick("capabilities"),
    energyBudget: pick("energyBudget"),
    ...(given.narrow ? { narrow: given.narrow } : {}),
  };
  return {
    component: resolved.artifact.layer.bytes,
    config,
    files: shippedFiles(resolved.artifact),
    artifact: { artifact: resolved.artifact, ref: resolved.ref },
  };
}

async function readFromPath(body: unknown): Promise<DeploySource> {
  const { component, functionDir, ...config } = parseOrThrow(deployJsonSchema, body, "the deploy request");
  const path = resolve(component.path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch {
    throw new JouleError("JOULE_ERR_DEPLOY_SOURCE_NOT_FOUND", `no readable file at component.path "${component.path}"`);
  }
  const mounts = config.capabilities.files;
  if (Object.keys(mounts).length > 0 && functionDir === undefined) {
    throw new JouleError(
      "JOULE_ERR_MANIFEST_INVALID",
      "capabilities.files needs functionDir, the function's directory the files are read from",
      { problems: ["functionDir: required with capabilities.files"] },
    );
  }
  const files = functionDir === undefined ? [] : await collectFiles(resolve(functionDir), mounts);
  return { component: bytes, config, files };
}

export function describe(record: FunctionRecord, baseUrl: string) {
  return { ...record, url: `${baseUrl}/fn/${record.name}/` };
}

export async function adminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { config, registry, metrics, ledger, scheduler } = deps;
  await app.register(multipart, {
    throwFileSizeLimit: true,
    limits: {
      fileSize: config.maxUploadBytes,
      files: 1 + MAX_FILES,
      fields: 4,
      fieldSize: 1024 * 1024,
      parts: 5 + MAX_FILES,
    },
  });

  const baseUrl = (request: FastifyRequest) => `${request.protocol}://${request.host}`;

  app.get("/v1/functions", async (request) => ({
    functions: registry.list().map((record) => describe(record, baseUrl(request))),
  }));

  app.get<{ Params: { name: string } }>("/v1/functions/:name", async (request) => {
    const live = registry.get(request.params.name);
    if (!live)
      throw new JouleError("JOULE_ERR_FUNCTION_NOT_FOUND", `no function named "${request.params.name}" is deployed`);
    return describe(live.record, baseUrl(request));
  });

  app.put<{ Params: { name: string } }>("/v1/functions/:name", async (request, reply) => {
    const started = performance.now();
    const name = checkName(request.params.name);
    const body = request.body as Record<string, unknown> | undefined;
    const {
      component,
      config: deployConfig,
      files,
      artifact,
    } = request.isMultipart()
      ? await readMultipart(request)
      : body && typeof body === "object" && "ref" in body
        ? await readFromRef(request, name, body, deps)
        : await readFromPath(body);
    const maxBody = deployConfig.limits.maxBodyBytes;
    if (maxBody !== undefined && maxBody > config.maxBodyBytes) {
      throw new JouleError(
        "JOULE_ERR_MANIFEST_INVALID",
        `limits.maxBodyBytes ${maxBody} is over this host's limit of ${config.maxBodyBytes}`,
        { problems: [`limits.maxBodyBytes: at most ${config.maxBodyBytes}`] },
      );
    }
    const existed = registry.get(name) !== undefined;
    const settings = functionSettings(deployConfig);
    // Files of mounts the deploy narrowed away are not shipped.
    const removed = Object.keys(deployConfig.capabilities.files).filter((m) => !(m in settings.capabilities.files));
    const shipped = files.filter((file) => !removed.some((mount) => underMount(file.path, mount)));
    // Refused before anything changes when the budget could not be written after the swap.
    if (deployConfig.energyBudget) ledger.commit();
    const { record, changed } = await registry.deploy({ name, component, files: shipped, artifact, ...settings });
    if (changed) deps.storage.wrote("functions");
    if (deployConfig.energyBudget) ledger.setBudget("function", name, budgetInput(deployConfig.energyBudget));
    if (changed) {
      metrics.forget(name);
      const live = registry.get(name);
      if (live) {
        // The new version's images are read by the workers now, not by its first request.
        scheduler.preload(live.image);
        await prewarm(scheduler, live, config);
      }
      request.log.info({ function: name, version: record.version, digest: record.component.digest }, "deployed");
    }
    reply.code(existed ? 200 : 201);
    return { ...describe(record, baseUrl(request)), deployMs: Math.round(performance.now() - started) };
  });

  app.delete<{ Params: { name: string } }>("/v1/functions/:name", async (request, reply) => {
    if (!(await registry.remove(request.params.name))) {
      throw new JouleError("JOULE_ERR_FUNCTION_NOT_FOUND", `no function named "${request.params.name}" is deployed`);
    }
    metrics.forget(request.params.name);
    request.log.info({ function: request.params.name }, "deleted");
    return reply.code(204).send();
  });
}
