/**
 * `GET /v1/audit`: the audit log, newest first, with filters. A key limited
 * to some functions reads only the records of those functions. While
 * auth.db cannot be written, `waiting` says how many records are not in it yet.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { AuditLog } from "../../auth/audit.ts";
import { JouleError } from "../../errors.ts";
import { access, principalOf } from "../access.ts";
import { parseRequest } from "../errors.ts";

const querySchema = z
  .object({
    principal: z.string().max(128).optional(),
    function: z.string().max(128).optional(),
    action: z.string().max(256).optional(),
    requestId: z.string().max(128).optional(),
    allowed: z.enum(["true", "false"]).optional(),
    since: z.iso.datetime().optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export async function auditRoutes(app: FastifyInstance, { audit }: { audit: AuditLog }): Promise<void> {
  app.get("/v1/audit", access("audit:read"), async (request) => {
    const { allowed, ...rest } = parseRequest(querySchema, request.query, "the audit query", "query");
    const limit = principalOf(request).functions;
    if (limit && rest.function !== undefined && !limit.has(rest.function)) {
      throw new JouleError("JOULE_ERR_PERMISSION_DENIED", "this key is limited to other functions", {
        scope: "audit:read",
        function: rest.function,
      });
    }
    const { records, waiting } = audit.query({
      ...rest,
      allowed: allowed === undefined ? undefined : allowed === "true",
      ...(limit ? { functions: [...limit] } : {}),
    });
    return waiting > 0 ? { records, waiting } : { records };
  });
}
