/**
 * Who is calling: the API key in `Authorization: Bearer <key>` or
 * `x-joule-authorization` (credentials.ts says which, and where), or the
 * operator's JOULE_ADMIN_TOKEN, which holds every scope, checked against
 * the scope a route needs. Missing or invalid credentials answer 401, a
 * missing scope 403; every denial is audited. A client that fails too often
 * is refused for a while (per address) before its keys are even looked at.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AuditLog } from "../auth/audit.ts";
import { type KeyStore, OPERATOR_ID, type Principal, SCOPES, type Scope } from "../auth/keys.ts";
import { JouleError } from "../errors.ts";
import { outOfReach, type Resource } from "./access.ts";
import { credentialHeader, credentialValue, JOULE_AUTHORIZATION } from "./credentials.ts";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
    /** Set once its refusal is in the audit log, so the answer is not recorded again. */
    refusalAudited?: boolean;
  }
}

const FAILURE_WINDOW_MS = 60_000;
const MAX_FAILURES = 20;
/** Denials audited one by one per address per window; past it one summary row, then silence. */
const AUDITED_DENIALS_PER_WINDOW = 60;
/** Tracked addresses past which expired ones are dropped. */
const MAX_TRACKED = 10_000;

export interface AuthDeps {
  keys: KeyStore;
  audit: AuditLog;
  adminToken?: string | undefined;
}

/** Counts an event for `ip` in the current window (a new window once the old one is over). */
function tally(windows: Map<string, { count: number; since: number }>, ip: string, now: number) {
  let entry = windows.get(ip);
  if (!entry || now - entry.since >= FAILURE_WINDOW_MS) {
    if (windows.size >= MAX_TRACKED) {
      for (const [key, value] of windows) if (now - value.since >= FAILURE_WINDOW_MS) windows.delete(key);
    }
    entry = { count: 0, since: now };
    windows.set(ip, entry);
  }
  entry.count++;
  return entry;
}

/** The password of `Basic base64(user:password)`: registry clients send an API key this way. */
function basicPassword(header: string): string {
  if (!header.startsWith("Basic ")) return "";
  const decoded = Buffer.from(header.slice("Basic ".length).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? "" : decoded.slice(colon + 1);
}

export class Authenticator {
  readonly #keys: KeyStore;
  readonly #audit: AuditLog;
  readonly #adminDigest: Buffer | undefined;
  readonly #failures = new Map<string, { count: number; since: number }>();
  readonly #denials = new Map<string, { count: number; since: number }>();

  constructor({ keys, audit, adminToken }: AuthDeps) {
    this.#keys = keys;
    this.#audit = audit;
    this.#adminDigest = adminToken ? createHash("sha256").update(adminToken).digest() : undefined;
  }

  /**
   * The principal of the request's credentials; undefined when it sent none.
   * Throws on bad ones. `readsAuthorization` false leaves `Authorization` to
   * the function (a public function's invocation): only
   * `x-joule-authorization` is Joule's then.
   */
  identify(
    request: FastifyRequest,
    action: string,
    fn: string | null,
    readsAuthorization = true,
  ): Principal | undefined {
    const source = credentialHeader(request, readsAuthorization);
    if (source === undefined) return undefined;
    request.credentialHeader = source;
    const header = credentialValue(request, source);
    const ip = request.ip;
    const failures = this.#failures.get(ip);
    if (failures && failures.count >= MAX_FAILURES && Date.now() - failures.since < FAILURE_WINDOW_MS) {
      this.#deny(request, "anonymous", action, fn, "too many failed attempts");
      throw new JouleError(
        "JOULE_ERR_REQUEST_RATE_LIMITED",
        "too many failed authentication attempts from this address; wait a minute",
      );
    }
    const presented = header.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : basicPassword(header);
    const principal = this.#operator(presented) ?? this.#keys.verify(presented);
    if (principal) return principal;
    tally(this.#failures, ip, Date.now());
    this.#deny(request, "anonymous", action, fn, "invalid credentials");
    throw new JouleError(
      "JOULE_ERR_REQUEST_UNAUTHORIZED",
      source === JOULE_AUTHORIZATION
        ? `the API key in ${JOULE_AUTHORIZATION} is not valid; send \`${JOULE_AUTHORIZATION}: Bearer <key>\``
        : fn === null
          ? "the API key is not valid; send `Authorization: Bearer <key>`"
          : `the API key is not valid; send \`Authorization: Bearer <key>\`, or, to give the function an Authorization header of its own, Joule's key as \`${JOULE_AUTHORIZATION}: Bearer <key>\``,
    );
  }

  #operator(presented: string): Principal | undefined {
    if (!this.#adminDigest) return undefined;
    const given = createHash("sha256").update(presented).digest();
    if (!timingSafeEqual(given, this.#adminDigest)) return undefined;
    return { id: OPERATOR_ID, name: "JOULE_ADMIN_TOKEN", scopes: new Set(SCOPES), functions: undefined };
  }

  /**
   * Requires `scope`, and, of a key limited to some functions, that the
   * request's resource is within its reach (access.ts).
   */
  require(request: FastifyRequest, scope: Scope, action: string, resource?: Resource): Principal {
    const fn = resource?.kind === "function" ? resource.name : null;
    const principal = request.principal ?? this.identify(request, action, fn);
    if (!principal) {
      this.#deny(request, "anonymous", action, fn, "no credentials");
      throw new JouleError(
        "JOULE_ERR_REQUEST_UNAUTHORIZED",
        `an API key is required: send \`Authorization: Bearer <key>\` (or \`${JOULE_AUTHORIZATION}: Bearer <key>\`)`,
      );
    }
    request.principal = principal;
    const why = principal.scopes.has(scope)
      ? outOfReach(principal, resource, request.method)
      : `key lacks the ${scope} scope`;
    if (why) {
      this.#deny(request, principal.id, action, fn, why);
      throw new JouleError("JOULE_ERR_PERMISSION_DENIED", `this ${why}`, { scope, ...(fn ? { function: fn } : {}) });
    }
    return principal;
  }

  /**
   * Audits a denial. The log is append-only, so an address that keeps being
   * denied gets AUDITED_DENIALS_PER_WINDOW rows a minute and one saying the
   * rest were left out, not a row per request.
   */
  #deny(request: FastifyRequest, principal: string, action: string, fn: string | null, reason: string): void {
    request.refusalAudited = true;
    const window = tally(this.#denials, request.ip, Date.now());
    if (window.count > AUDITED_DENIALS_PER_WINDOW + 1) return;
    const until = new Date(window.since + FAILURE_WINDOW_MS).toISOString();
    this.#audit.record({
      principal,
      action,
      function: fn,
      allowed: false,
      reason:
        window.count === AUDITED_DENIALS_PER_WINDOW + 1
          ? `${reason}; further denials from this address are not recorded until ${until}`
          : reason,
      requestId: String(request.id),
      ip: request.ip,
    });
  }

  /** Records an admin operation once it was answered. */
  recordOperation(request: FastifyRequest, reply: FastifyReply, action: string, fn: string | null): void {
    if (!request.principal || request.refusalAudited) return; // refused: already audited
    const allowed = reply.statusCode < 400;
    this.#audit.record({
      principal: request.principal.id,
      action,
      function: fn,
      allowed,
      reason: allowed ? "ok" : `answered ${reply.statusCode}`,
      requestId: String(request.id),
      ip: request.ip,
    });
  }
}
