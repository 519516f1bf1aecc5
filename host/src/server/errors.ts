/** How failures inside fastify become catalog errors (see host/src/errors.ts). */
import type { FastifyError } from "fastify";
import type { z } from "zod";
import { JouleError } from "../errors.ts";
import { describeIssues } from "../manifest.ts";
import { storageError, storageFault } from "../store/storage-error.ts";

/**
 * An admin API body or query parsed with `schema`, or JOULE_ERR_REQUEST_INVALID
 * naming every failing field (`details.problems`, paths under `root`).
 */
export function parseRequest<T extends z.ZodType>(schema: T, value: unknown, what: string, root = ""): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error, root);
  throw new JouleError("JOULE_ERR_REQUEST_INVALID", `${what} is invalid: ${problems.join("; ")}`, { problems });
}

/**
 * The catalog error a failure answers. The stores code their own storage
 * faults (JOULE_ERR_HOST_STORAGE naming the store); what reaches here
 * uncoded from the file system under `dataDir` is the function store's.
 */
export function toJouleError(error: FastifyError, dataDir?: string): JouleError {
  if (error instanceof JouleError) return error;
  const fault = storageFault(error, dataDir);
  if (fault) return storageError("functions", fault, "not done (what was there before stands)");
  const status = error.statusCode ?? 500;
  if (status === 413 || error.code === "FST_ERR_CTP_BODY_TOO_LARGE" || error.code === "FST_REQ_FILE_TOO_LARGE") {
    return new JouleError("JOULE_ERR_BODY_TOO_LARGE", `the request body is over the limit: ${error.message}`);
  }
  if (status >= 400 && status < 500) return new JouleError("JOULE_ERR_REQUEST_INVALID", error.message);
  return new JouleError(
    "JOULE_ERR_HOST_INTERNAL",
    "internal error; the host log has the details under this request id",
  );
}
