/**
 * The admin API, `/v1/functions`: deploy (PUT: an upload, an OCI reference
 * the host pulls, or, for the operator, a path under JOULE_DEPLOY_DIRS),
 * list, show and delete functions. HTTP only: reading a deploy's source is
 * deploy/sources.ts, the deploy itself deploy/deploy-function.ts.
 */
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { OPERATOR_ID } from "../../auth/keys.ts";
import { MAX_FILES } from "../../capabilities/files-bundle.ts";
import { type DeployDeps, deployFunction } from "../../deploy/deploy-function.ts";
import { type DeploySource, readHostPath, readReference, readUpload } from "../../deploy/sources.ts";
import { JouleError } from "../../errors.ts";
import type { FunctionRecord } from "../../store/function-store.ts";
import type { StorageHealth } from "../../store/storage-health.ts";
import { access, functionParam, principalOf, visible } from "../access.ts";
import type { Authenticator } from "../auth.ts";

export interface AdminDeps extends DeployDeps {
  auth: Authenticator;
  storage: StorageHealth;
}

export function describe(record: FunctionRecord, baseUrl: string) {
  return { ...record, url: `${baseUrl}/fn/${record.name}/` };
}

/** The deploy's source, as the request sends it; each kind checks what it needs beyond functions:manage. */
async function readSource(
  request: FastifyRequest<{ Params: { name: string } }>,
  deps: AdminDeps,
): Promise<DeploySource> {
  if (request.isMultipart()) return readUpload(request);
  const body = request.body;
  if (body && typeof body === "object" && "ref" in body) {
    // The host fetches from an address the caller chose: that needs artifacts:manage too.
    deps.auth.require(request, "artifacts:manage", "PUT /v1/functions/:name (ref)", functionParam(request));
    const registry = deps.registry;
    return readReference(
      body as Record<string, unknown>,
      deps.config,
      (digest) => registry.artifact(digest),
      // What the caller is not told (the address a name resolved to), for the operator's log.
      (refusal, ref) =>
        request.log.warn({ ...refusal, ref }, "a registry connection was refused by the address policy"),
    );
  }
  // Reading the host's disk is the operator's alone, and only where the operator said.
  if (request.principal?.id !== OPERATOR_ID || deps.config.deployDirs.length === 0) {
    throw new JouleError(
      "JOULE_ERR_PERMISSION_DENIED",
      "deploys by path are for the operator credential (JOULE_ADMIN_TOKEN) from directories listed in JOULE_DEPLOY_DIRS; upload the component (multipart) or deploy an OCI reference instead",
      { function: request.params.name },
    );
  }
  return readHostPath(body, deps.config);
}

export async function adminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { config, registry } = deps;
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
  const manage = access("functions:manage", { resource: functionParam });

  app.get("/v1/functions", access("functions:manage"), async (request) => ({
    functions: registry
      .list()
      .filter((record) => visible(principalOf(request), record.name))
      .map((record) => describe(record, baseUrl(request))),
  }));

  app.get<{ Params: { name: string } }>("/v1/functions/:name", manage, async (request) => {
    const live = registry.get(request.params.name);
    if (!live)
      throw new JouleError("JOULE_ERR_FUNCTION_NOT_FOUND", `no function named "${request.params.name}" is deployed`);
    return describe(live.record, baseUrl(request));
  });

  app.put<{ Params: { name: string } }>("/v1/functions/:name", manage, async (request, reply) => {
    const started = performance.now();
    const { name } = request.params;
    const source = await readSource(request, deps);
    // A budget is energy:manage's to set: a deploy must not be a way to lift one.
    if (source.config.energyBudget) {
      deps.auth.require(request, "energy:manage", "PUT /v1/functions/:name (energyBudget)", functionParam(request));
    }
    const { record, changed, existed } = await deployFunction(deps, name, source, principalOf(request));
    if (changed) {
      // A deploy that wrote the function store: it can be written again, if it could not.
      deps.storage.wrote("functions");
      request.log.info({ function: name, version: record.version, digest: record.component.digest }, "deployed");
    }
    reply.code(existed ? 200 : 201);
    return { ...describe(record, baseUrl(request)), deployMs: Math.round(performance.now() - started) };
  });

  app.delete<{ Params: { name: string } }>("/v1/functions/:name", manage, async (request, reply) => {
    if (!(await registry.remove(request.params.name))) {
      throw new JouleError("JOULE_ERR_FUNCTION_NOT_FOUND", `no function named "${request.params.name}" is deployed`);
    }
    deps.metrics.forget(request.params.name);
    request.log.info({ function: request.params.name }, "deleted");
    return reply.code(204).send();
  });
}
