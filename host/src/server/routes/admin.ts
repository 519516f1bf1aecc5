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
import type { Artifact } from "../../oci/artifact.ts";
import { resolveForDeploy } from "../../oci/deploy-source.ts";
import { prewarm } from "../../pool/prewarm.ts";
import type { Scheduler } from "../../pool/scheduler.ts";
import type { FunctionRegistry } from "../../runtime/registry.ts";
import type { FunctionRecord } from "../../store/function-store.ts";
import type { Authenticator } from "../auth.ts";
import type { HostMetrics } from "../metrics.ts";

export const deployJsonSchema = deploySettingsSchema
  .extend({
    /** A component already on the host's disk (relative paths from the host's working directory). */
    component: z.object({ path: z.string().min(1) }).strict(),
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

async function readMultipart(request: FastifyRequest): Promise<DeploySource> {
  let component: Uint8Array | undefined;
  let configJson: unknown = {};
  for await (const part of request.parts()) {
    if (part.type === "file") {
      if (part.fieldname !== "component") {
        throw new JouleError(
          "JOULE_ERR_REQUEST_INVALID",
          `unexpected file field "${part.fieldname}"; send the component as "component"`,
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
  return { component, config: parseOrThrow(deploySettingsSchema, configJson, "the deploy config") };
}

interface DeploySource {
  component: Uint8Array;
  config: DeploySettings;
  artifact?: { artifact: Artifact; ref: string } | undefined;
}

/**
 * A deploy by reference makes the host fetch from a URL the caller chose, so
 * it needs `artifacts:manage` besides `functions:manage`.
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
  const pick = <K extends keyof DeploySettings>(key: K): DeploySettings[K] =>
    Object.hasOwn(body, key) ? (given[key] as DeploySettings[K]) : (fromArtifact?.[key] ?? defaults[key]);
  const config: DeploySettings = {
    env: pick("env"),
    limits: pick("limits"),
    scaling: pick("scaling"),
    isolation: pick("isolation"),
    public: pick("public"),
    capabilities: pick("capabilities"),
    energyBudget: pick("energyBudget"),
  };
  return {
    component: resolved.artifact.layer.bytes,
    config,
    artifact: { artifact: resolved.artifact, ref: resolved.ref },
  };
}

async function readFromPath(body: unknown): Promise<DeploySource> {
  const { component, ...config } = parseOrThrow(deployJsonSchema, body, "the deploy request");
  const path = resolve(component.path);
  try {
    return { component: await readFile(path), config };
  } catch {
    throw new JouleError("JOULE_ERR_DEPLOY_SOURCE_NOT_FOUND", `no readable file at component.path "${component.path}"`);
  }
}

export function describe(record: FunctionRecord, baseUrl: string) {
  return { ...record, url: `${baseUrl}/fn/${record.name}/` };
}

export async function adminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { config, registry, metrics, ledger, scheduler } = deps;
  await app.register(multipart, {
    throwFileSizeLimit: true,
    limits: { fileSize: config.maxUploadBytes, files: 1, fields: 4, fieldSize: 1024 * 1024, parts: 5 },
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
    const { record, changed } = await registry.deploy({
      name,
      component,
      artifact,
      ...functionSettings(deployConfig),
    });
    if (deployConfig.energyBudget) ledger.setBudget("function", name, budgetInput(deployConfig.energyBudget));
    if (changed) {
      metrics.forget(name);
      const live = registry.get(name);
      if (live) await prewarm(scheduler, live, config);
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
