/**
 * `/v1/keys`: API keys over the admin API, for operators who have no shell
 * on the host (`joule keys` manages a data dir directly). The area needs
 * `keys:manage` (app.ts), and every change is audited there.
 *
 * A caller can only hand out what it holds: every scope of a new key must
 * be one of its own, and a caller limited to some functions can only make
 * keys limited to those functions or fewer. Revoking and listing follow the
 * same rule, so no key can undo or see one it could not have made. A key
 * whose own energy is budgeted makes no keys unless it holds energy:manage:
 * a new key has no budget, so it would be a way around its own. Each key
 * records who made it. Keys are looked up on every request, so a revoked
 * key is refused from the next one on.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { type KeyInfo, type KeyStore, type Principal, scopeSchema } from "../../auth/keys.ts";
import type { EnergyLedger } from "../../energy/ledger.ts";
import { JouleError } from "../../errors.ts";
import { functionNameSchema } from "../../manifest.ts";
import { access, principalOf } from "../access.ts";
import { parseRequest } from "../errors.ts";

const createSchema = z
  .object({
    name: z.string().min(1).max(128).default("key"),
    scopes: z.array(scopeSchema).min(1).max(16),
    functions: z.array(functionNameSchema).min(1).max(1000).optional(),
  })
  .strict();

const ID = /^[0-9a-f]{16}$/;

/** Why `caller` may not give (or take away) what `key` holds; undefined when it may. */
function overreach(caller: Principal, key: Pick<KeyInfo, "scopes" | "functions">): string | undefined {
  const missing = key.scopes.filter((scope) => !caller.scopes.has(scope));
  if (missing.length > 0) return `this key lacks ${missing.join(", ")}, so it cannot hand them out or revoke them`;
  const limit = caller.functions;
  if (limit && (!key.functions || key.functions.some((fn) => !limit.has(fn)))) {
    return `this key is limited to the functions ${[...limit].join(", ")}; the key must be limited to those or fewer`;
  }
  return undefined;
}

export async function keysRoutes(
  app: FastifyInstance,
  { keys, ledger }: { keys: KeyStore; ledger: EnergyLedger },
): Promise<void> {
  const caller = principalOf;
  const options = access("keys:manage");

  app.get("/v1/keys", options, async (request) => ({
    keys: keys.list().filter((key) => overreach(caller(request), key) === undefined),
  }));

  app.post("/v1/keys", options, async (request, reply) => {
    const input = parseRequest(createSchema, request.body ?? {}, "the key request");
    const wanted = { scopes: input.scopes, functions: input.functions ?? null };
    const by = caller(request);
    const why = overreach(by, wanted);
    if (why) throw new JouleError("JOULE_ERR_PERMISSION_DENIED", why, { scopes: wanted.scopes });
    if (!by.scopes.has("energy:manage") && ledger.hasBudget("principal", by.id)) {
      throw new JouleError(
        "JOULE_ERR_PERMISSION_DENIED",
        "this key's energy is budgeted and a new key would have no budget: make keys with one that holds energy:manage",
        { scope: "energy:manage" },
      );
    }
    const { key, info } = keys.create({ ...input, createdBy: by.id });
    request.auditSubject = info.id;
    // The secret exists only in this answer.
    return reply.code(201).send({ key, ...info });
  });

  app.delete<{ Params: { id: string } }>("/v1/keys/:id", options, async (request, reply) => {
    const { id } = request.params;
    const target = ID.test(id) ? keys.list().find((k) => k.id === id && !k.revoked) : undefined;
    if (!target) throw new JouleError("JOULE_ERR_KEY_NOT_FOUND", `no active key with id "${id}"`, { id });
    const why = overreach(caller(request), target);
    if (why) throw new JouleError("JOULE_ERR_PERMISSION_DENIED", why, { id });
    keys.revoke(id);
    return reply.code(204).send();
  });
}
