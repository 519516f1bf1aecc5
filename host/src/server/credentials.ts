/**
 * Where a caller's Joule credential travels. `Authorization` is the
 * standard place, and the admin API reads it there (`Bearer <key>`, or
 * Basic's password for registry clients). But on `/fn/` it belongs to the
 * function: a public function may do its own Bearer/Basic/JWT auth or check
 * a webhook's signature, so Joule never reads it there. A caller who wants
 * to be charged as itself for a public function, or a private function that
 * needs the caller's own `Authorization`, sends Joule's credential in
 * `x-joule-authorization` instead (the same forms), as Cloud Run takes its
 * token in `X-Serverless-Authorization` beside the app's own.
 *
 * Which header a credential came in is recorded on the request, and that
 * header is the one the function never sees: `x-joule-authorization`
 * always, `Authorization` only when Joule took its credential from it.
 */
import type { FastifyRequest } from "fastify";

export const JOULE_AUTHORIZATION = "x-joule-authorization";

export type CredentialHeader = "authorization" | typeof JOULE_AUTHORIZATION;

declare module "fastify" {
  interface FastifyRequest {
    /** The header Joule's credential was read from, if any (hidden from the function). */
    credentialHeader?: CredentialHeader;
  }
}

/**
 * The header holding the caller's Joule credential: `x-joule-authorization`
 * when sent, else `Authorization` where the route reads it (everywhere but
 * a public function's invocations). Undefined when there is none.
 */
export function credentialHeader(request: FastifyRequest, readsAuthorization: boolean): CredentialHeader | undefined {
  if (request.headers[JOULE_AUTHORIZATION] !== undefined) return JOULE_AUTHORIZATION;
  if (readsAuthorization && request.headers.authorization !== undefined) return "authorization";
  return undefined;
}

/** The value of one credential header (the first, when a client sent it twice). */
export function credentialValue(request: FastifyRequest, header: CredentialHeader): string {
  const value = request.headers[header];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}
