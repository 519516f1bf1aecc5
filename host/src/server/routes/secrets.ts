/**
 * `/v1/secrets`: the secrets env may reference as `secret://<name>`, over
 * the admin API, for operators without a shell on the host (`joule secrets
 * --host`; on the host machine `joule secrets` opens the data dir). Needs
 * `secrets:manage`; values go in and never come out: listing shows names,
 * the functions that may use each, and when it changed.
 *
 * A key limited to some functions manages only secrets whose functions are
 * all among its own (never `*`): it sees only those, sets a secret only for
 * them, and deletes only those. Names are host-wide, so a name another
 * tenant's secret holds answers 403 to a set, as a kv store name does.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Principal } from "../../auth/keys.ts";
import type { SecretAudience, SecretStore } from "../../capabilities/secrets.ts";
import { JouleError } from "../../errors.ts";
import { functionNameSchema } from "../../manifest.ts";
import { access, principalOf } from "../access.ts";
import { parseRequest } from "../errors.ts";

const paramsSchema = z.object({
  secret: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "letters, digits, . _ - (1–128)"),
});

const setSchema = z
  .object({
    value: z.string().max(64 * 1024),
    functions: z.union([z.literal("*"), z.array(functionNameSchema).min(1).max(1000)]).optional(),
  })
  .strict();

/** Whether `caller` may manage a secret for `audience` (a key limited to functions: only for those). */
function within(caller: Principal, audience: SecretAudience): boolean {
  const limit = caller.functions;
  if (!limit) return true;
  return audience !== "*" && audience.every((fn) => limit.has(fn));
}

export async function secretsRoutes(app: FastifyInstance, { secrets }: { secrets: SecretStore }): Promise<void> {
  const options = access("secrets:manage");
  const find = (name: string) => secrets.names().find((secret) => secret.name === name);

  app.get("/v1/secrets", options, async (request) => ({
    secrets: secrets.names().filter((secret) => within(principalOf(request), secret.functions)),
  }));

  app.put("/v1/secrets/:secret", options, async (request, reply) => {
    const { secret } = parseRequest(paramsSchema, request.params, "the secret's name", "params");
    const input = parseRequest(setSchema, request.body ?? {}, "the secret");
    const caller = principalOf(request);
    const existing = find(secret);
    if (existing && !within(caller, existing.functions)) {
      throw new JouleError(
        "JOULE_ERR_PERMISSION_DENIED",
        `the name ${secret} is taken by a secret of other functions`,
        {
          scope: "secrets:manage",
        },
      );
    }
    if (input.functions !== undefined && !within(caller, input.functions)) {
      throw new JouleError(
        "JOULE_ERR_PERMISSION_DENIED",
        "this key is limited to functions: a secret it sets must name some of those, never '*'",
        { scope: "secrets:manage" },
      );
    }
    if (!existing && input.functions === undefined) {
      throw new JouleError(
        "JOULE_ERR_REQUEST_INVALID",
        'a new secret needs "functions": the functions that may use it, or "*"',
      );
    }
    secrets.set(secret, input.value, input.functions);
    return reply.code(existing ? 200 : 201).send(find(secret));
  });

  app.delete("/v1/secrets/:secret", options, async (request, reply) => {
    const { secret } = parseRequest(paramsSchema, request.params, "the secret's name", "params");
    const existing = find(secret);
    // One answer for "no such secret" and "another tenant's": names cannot be probed by deleting.
    if (!existing || !within(principalOf(request), existing.functions) || !secrets.delete(secret)) {
      throw new JouleError("JOULE_ERR_SECRET_NOT_FOUND", `no secret named ${secret} that this key may manage`);
    }
    return reply.code(204).send();
  });
}
