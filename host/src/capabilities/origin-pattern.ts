/**
 * The entries of `capabilities.outboundHttp`: `scheme://host[:port]`, parsed
 * once at deploy into checked patterns (the Deno/Spin way) so a request is
 * matched against structure, never against strings.
 *
 * - `scheme` is `http` or `https`;
 * - `host` is a name (`api.example.com`), a wildcard over its subdomains at
 *   any depth (`*.example.com`, which does not match `example.com` itself),
 *   or an IP address (`127.0.0.1`, `[::1]`), which is also how a grant
 *   allows a private or loopback address (see net/net-policy.ts);
 * - `port` defaults to the scheme's; `:*` allows any.
 *
 * No path, query, user info or fragment: a grant is an origin.
 */
import { isAddressLiteral } from "../net/net-policy.ts";

export interface OriginPattern {
  /** `http:` or `https:`, as URL.protocol spells it. */
  protocol: "http:" | "https:";
  /** Lowercase, IDNA and IP spellings normalized; for a wildcard, the suffix after `*.`. */
  host: string;
  wildcard: boolean;
  /** The port, or "*" for any. */
  port: number | "*";
  /** The entry as written, for messages. */
  source: string;
}

const SHAPE = /^(https?):\/\/(\*\.)?([^/:?#@\s[\]]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}|\*))?\/?$/;

const DEFAULT_PORTS = { "http:": 80, "https:": 443 } as const;

/** Parses one entry; the error message says what is wrong with it. */
export function parseOriginPattern(source: string): OriginPattern {
  const match = SHAPE.exec(source.trim());
  if (!match) {
    throw new Error(
      `"${source}" is not an origin pattern: write scheme://host[:port] (http or https, optional *. prefix, no path)`,
    );
  }
  const [, scheme = "", star, rawHost = "", rawPort] = match;
  if (rawHost.includes("*")) throw new Error(`"${source}": * may only start a name, as in https://*.example.com`);
  const protocol = `${scheme}:` as OriginPattern["protocol"];
  let host: string;
  try {
    // WHATWG URL parsing: lowercases, applies IDNA, and rewrites 2130706433 / 0x7f.1 / 127.1 as 127.0.0.1.
    host = new URL(`${scheme}://${rawHost}`).hostname;
  } catch {
    throw new Error(`"${source}" has an invalid host`);
  }
  if (star && isAddressLiteral(host)) throw new Error(`"${source}": a wildcard applies to names, not addresses`);
  if (star && !host.includes(".")) throw new Error(`"${source}": a wildcard needs a domain with a dot (*.example.com)`);
  let port: number | "*" = DEFAULT_PORTS[protocol];
  if (rawPort === "*") port = "*";
  else if (rawPort !== undefined) {
    port = Number(rawPort);
    if (port < 1 || port > 65535) throw new Error(`"${source}": port must be 1-65535 or *`);
  }
  return { protocol, host, wildcard: star !== undefined, port, source };
}

/** The port a parsed URL connects to. */
export function urlPort(url: URL): number {
  return url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol as OriginPattern["protocol"]];
}

export function matchesOrigin(pattern: OriginPattern, url: URL): boolean {
  if (url.protocol !== pattern.protocol) return false;
  if (pattern.port !== "*" && urlPort(url) !== pattern.port) return false;
  const host = url.hostname;
  if (pattern.wildcard) return host.endsWith(`.${pattern.host}`) && !isAddressLiteral(host);
  return host === pattern.host;
}

/** Whether every origin `inner` matches is also matched by `outer` (for narrowing a grant). */
export function covers(outer: OriginPattern, inner: OriginPattern): boolean {
  if (outer.protocol !== inner.protocol) return false;
  if (outer.port !== "*" && outer.port !== inner.port) return false;
  if (!outer.wildcard) return !inner.wildcard && outer.host === inner.host;
  return inner.host.endsWith(`.${outer.host}`) || (inner.wildcard && inner.host === outer.host);
}
