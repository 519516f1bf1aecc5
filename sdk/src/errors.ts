/**
 * Errors the SDK raises for the host's answers. A denial carries the host's
 * code, so a function can tell "not granted" from "the upstream failed".
 */

/** A capability call the function was not granted (the host audits it). */
export class CapabilityDeniedError extends Error {
  override name = "CapabilityDeniedError";
  readonly code = "JOULE_ERR_CAPABILITY_DENIED";
}

/** The `{ tag, val }` of a WIT error variant, however jco delivered it. */
export function witError(error: unknown): { tag: string; val: string } | undefined {
  const payload = (error as { payload?: { tag?: unknown; val?: unknown } })?.payload ?? error;
  const { tag, val } = (payload ?? {}) as { tag?: unknown; val?: unknown };
  return typeof tag === "string" && typeof val === "string" ? { tag, val } : undefined;
}
