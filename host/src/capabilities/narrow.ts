/**
 * Operator narrowing: a deploy request may give `narrow`, a subset of the
 * capabilities the manifest declares, and the function is granted that
 * subset. Narrowing never widens: a store, origin or mount that the
 * manifest does not declare is an error naming it. A capability left out of
 * `narrow` keeps the manifest's grant; an empty list or object takes it away
 * (and a component that imports it is then refused at deploy).
 */
import { JouleError } from "../errors.ts";
import type { Capabilities } from "../manifest.ts";
import { covers, parseOriginPattern } from "./origin-pattern.ts";

export type Narrowing = Partial<Capabilities>;

export function narrowCapabilities(declared: Capabilities, narrow: Narrowing | undefined): Capabilities {
  if (!narrow) return declared;
  const problems: string[] = [];
  for (const store of narrow.kv ?? []) {
    if (!declared.kv.includes(store)) problems.push(`narrow.kv: "${store}" is not in capabilities.kv`);
  }
  const declaredOrigins = declared.outboundHttp.map(parseOriginPattern);
  for (const origin of narrow.outboundHttp ?? []) {
    const pattern = parseOriginPattern(origin);
    if (!declaredOrigins.some((outer) => covers(outer, pattern))) {
      problems.push(`narrow.outboundHttp: "${origin}" is not within capabilities.outboundHttp`);
    }
  }
  for (const [mount, source] of Object.entries(narrow.files ?? {})) {
    if (declared.files[mount] !== source) {
      problems.push(`narrow.files: "${mount}": "${source}" is not in capabilities.files`);
    }
  }
  if (problems.length > 0) {
    throw new JouleError(
      "JOULE_ERR_MANIFEST_INVALID",
      `the deploy's narrow may only remove grants: ${problems.join("; ")}`,
      {
        problems,
      },
    );
  }
  return {
    kv: narrow.kv ?? declared.kv,
    outboundHttp: narrow.outboundHttp ?? declared.outboundHttp,
    files: narrow.files ?? declared.files,
  };
}
