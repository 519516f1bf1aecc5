/**
 * References to artifacts in a registry: `[oci://]<registry>/<repository>[:<tag>][@sha256:<hex>]`.
 * The registry is always named (no implicit Docker Hub): the first path
 * segment is the registry host, with an optional port. Without a tag or a
 * digest the tag is `latest`. Parsed once, at the edge.
 */
import { JouleError } from "../errors.ts";
import { DIGEST } from "./digest.ts";

const REGISTRY =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface Reference {
  /** host[:port] */
  registry: string;
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

function invalid(input: string, why: string): JouleError {
  return new JouleError(
    "JOULE_ERR_OCI_REFERENCE_INVALID",
    `"${input}" is not an artifact reference (${why}); write <registry>/<repository>:<tag> or <registry>/<repository>@sha256:<digest>, e.g. 127.0.0.1:5000/functions/hello:1.0`,
  );
}

export function parseReference(input: string): Reference {
  const text = input.startsWith("oci://") ? input.slice("oci://".length) : input;
  if (text.length > 1024) throw invalid(input.slice(0, 64), "longer than 1024 characters");
  const slash = text.indexOf("/");
  if (slash <= 0) throw invalid(input, "no registry host before the first /");
  const registry = text.slice(0, slash);
  if (!REGISTRY.test(registry)) throw invalid(input, `"${registry}" is not a registry host[:port]`);
  let rest = text.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, "the digest is not sha256:<64 lowercase hex digits>");
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `"${tag}" is not a tag`);
  }
  if (!REPOSITORY.test(rest) || rest.length > 255) {
    throw invalid(input, `"${rest}" is not a repository name (lowercase letters, digits, . _ - and /)`);
  }
  return { registry, repository: rest, tag: tag ?? (digest ? undefined : "latest"), digest };
}

export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

/** Loopback registries speak plain HTTP unless told otherwise; everything else needs TLS or an explicit opt-in. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * A registry as an operator lists it (`host`, `host:port`, `[v6]:port`):
 * its hostname as WHATWG URL parsing spells it (so `127.1` is `127.0.0.1`),
 * without brackets, and its port if one is given; undefined if it is not
 * a registry host.
 */
export function parseRegistryHost(text: string): { hostname: string; port: number | undefined } | undefined {
  if (!REGISTRY.test(text)) return undefined;
  const [, host = "", port] = /^(.*?)(?::([0-9]{1,5}))?$/.exec(text) ?? [];
  const number = port === undefined ? undefined : Number(port);
  if (number !== undefined && (number < 1 || number > 65535)) return undefined;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
  return { hostname: hostname.replace(/^\[|\]$/g, ""), port: number };
}
