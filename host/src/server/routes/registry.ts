/**
 * The host's store, read-only, over the OCI distribution API: each deployed
 * function is the repository `functions/<name>`, its live artifact tagged
 * `latest` (and reachable by its digest). What `joule pull`, skopeo or any
 * registry client get here is exactly what the host stores and would push.
 *
 * Needs an API key with `artifacts:manage`, as a Bearer token or as the
 * password of Basic auth (what registry clients send: `skopeo --src-creds any:<key>`,
 * `joule pull --username any --password-stdin`); a key limited to some
 * functions reads only theirs. Failures answer in the distribution API's
 * own error shape, with the Basic challenge registry clients need to log in.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { MEDIA_TYPES } from "../../oci/media-types.ts";
import type { FunctionRegistry } from "../../runtime/registry.ts";
import { access, functionParam } from "../access.ts";
import { toJouleError } from "../errors.ts";

export interface RegistryDeps {
  registry: FunctionRegistry;
}

/** The distribution API's error code for a Joule error's status. */
const DISTRIBUTION_CODES: Record<number, string> = {
  400: "NAME_INVALID",
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  429: "TOOMANYREQUESTS",
};

/** Errors in the distribution API's own shape, which registry clients read. */
function fail(reply: FastifyReply, status: number, code: string, message: string) {
  return reply
    .code(status)
    .type("application/json")
    .send({ errors: [{ code, message }] });
}

export async function registryRoutes(app: FastifyInstance, deps: RegistryDeps): Promise<void> {
  const { registry } = deps;

  app.addHook("onSend", async (_request, reply) => {
    reply.header("docker-distribution-api-version", "registry/2.0");
  });

  // Refusals (access.ts) and failures in the shape registry clients read.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const joule = toJouleError(error);
    if (joule.status === 401) reply.header("www-authenticate", 'Basic realm="joule"');
    if (joule.code === "JOULE_ERR_HOST_INTERNAL") request.log.error({ err: error }, "unhandled error");
    else request.log.info({ code: joule.code }, joule.message);
    return fail(reply, joule.status, DISTRIBUTION_CODES[joule.status] ?? "UNKNOWN", joule.message);
  });

  const artifacts = access("artifacts:manage", { resource: functionParam });

  app.get("/v2/", access("artifacts:manage"), async () => ({}));

  /**
   * The digest of a function's live artifact, if `reference` names it
   * (`latest` or the digest). Each request reads only the one blob it asks
   * for: an artifact may have a thousand file layers.
   */
  const artifactOf = (name: string, reference?: string) => {
    const digest = registry.get(name)?.record.artifact?.digest;
    if (!digest || (reference !== undefined && reference !== "latest" && reference !== digest)) return undefined;
    return digest;
  };

  app.get<{ Params: { name: string; reference: string } }>(
    "/v2/functions/:name/manifests/:reference",
    artifacts,
    async (request, reply) => {
      const digest = artifactOf(request.params.name, request.params.reference);
      const manifest = digest === undefined ? undefined : await registry.artifactManifest(digest);
      if (!digest || !manifest) return fail(reply, 404, "MANIFEST_UNKNOWN", "no such function or version");
      return reply.type(MEDIA_TYPES.manifest).header("docker-content-digest", digest).send(manifest);
    },
  );

  app.get<{ Params: { name: string; digest: string } }>(
    "/v2/functions/:name/blobs/:digest",
    artifacts,
    async (request, reply) => {
      const digest = artifactOf(request.params.name);
      const blob = digest === undefined ? undefined : await registry.artifactBlob(digest, request.params.digest);
      if (!blob) return fail(reply, 404, "BLOB_UNKNOWN", "no such blob in this function's artifact");
      return reply.type("application/octet-stream").header("docker-content-digest", request.params.digest).send(blob);
    },
  );
}
