/**
 * Who may reach what. Every route declares its access once, beside its
 * handler (`config: { access }` in its route options), and one hook in
 * app.ts enforces it before the handler runs: a route without a declaration
 * cannot even be registered. A declaration names the scope the route needs
 * and, where the route concerns one function or one principal, how to read
 * which from its (already validated) params.
 *
 * A key limited to some functions (`functions` in /v1/keys) reaches only
 * those, whatever its scopes: managing, invoking, their artifacts, their
 * energy budgets, their audit records; lists are filtered to them. Of the
 * principals' budgets it reads its own and changes none. Routes that concern
 * no single function or principal filter what they answer with `visible`.
 */
import type { FastifyRequest } from "fastify";
import type { Principal, Scope } from "../auth/keys.ts";

/** What one request is about, when it is about one thing. */
export type Resource = { kind: "function"; name: string } | { kind: "principal"; id: string };

export interface Access {
  /** The scope the route needs; "public" for what anyone may call (liveness, readiness). */
  scope: Scope | "public";
  /** The function or principal the request concerns, from its params. */
  resource?: (request: FastifyRequest) => Resource | undefined;
  /** Whether this request may come without credentials (an invocation of a public function). */
  anonymous?: (request: FastifyRequest) => boolean;
  /** How the audit log names the request, when not by its method and route. */
  action?: (request: FastifyRequest) => string;
}

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
  }
}

/** The function named by a route's `:name` param (validated by app.ts before any hook reads it). */
export const functionParam = (request: FastifyRequest): Resource => ({
  kind: "function",
  name: (request.params as { name: string }).name,
});

/** Route options that declare `access`. */
export function access(scope: Access["scope"], more: Omit<Access, "scope"> = {}): { config: { access: Access } } {
  return { config: { access: { scope, ...more } } };
}

/** Whether `principal`'s function list lets it see `fn` (a key limited to none sees all). */
export function visible(principal: Principal, fn: string | null): boolean {
  if (!principal.functions) return true;
  return fn !== null && principal.functions.has(fn);
}

/** Why a limited `principal` may not make this request about `resource`; undefined when it may. */
export function outOfReach(principal: Principal, resource: Resource | undefined, method: string): string | undefined {
  if (!principal.functions || !resource) return undefined;
  if (resource.kind === "function") {
    return principal.functions.has(resource.name) ? undefined : "key is limited to other functions";
  }
  const reading = method === "GET" || method === "HEAD";
  if (resource.id === principal.id && reading) return undefined;
  return "key is limited to functions: it reads its own principal's budget and changes none";
}

/** The caller of a route that requires a scope (set by the access hook before any handler runs). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error(`${request.routeOptions.url} ran without a principal: its access is wrong`);
  return request.principal;
}
