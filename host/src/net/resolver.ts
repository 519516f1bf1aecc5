/**
 * How the host resolves the names it is asked to connect to (guests'
 * outbound HTTP, registries a deploy pulls from): the system's lookup, or
 * A and AAAA queries to the servers in JOULE_DNS_SERVERS (split-horizon DNS,
 * and tests that script answers). Every answer is returned, because the
 * address policy (net-policy.ts) judges all of them, not just the first.
 */
import { lookup as dnsLookup, Resolver } from "node:dns/promises";
import type { Resolve } from "./net-policy.ts";

/** Bounds one name's resolution when servers are configured (the system lookup has its own). */
const QUERY_TIMEOUT_MS = 2000;
const QUERY_TRIES = 2;

export function resolver(servers: readonly string[] | undefined): Resolve {
  if (!servers || servers.length === 0) return (host) => dnsLookup(host, { all: true, verbatim: true });
  const dns = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
  dns.setServers([...servers]);
  const query = (host: string, family: 4 | 6) =>
    (family === 4 ? dns.resolve4(host) : dns.resolve6(host)).then(
      (addresses) => addresses.map((address) => ({ address, family })),
      (error: NodeJS.ErrnoException) => {
        // No record of this family is an empty answer, not a failure: the other family may have one.
        if (error.code === "ENODATA" || error.code === "ENOTFOUND") return [];
        throw error;
      },
    );
  return async (host) => {
    const answers = (await Promise.all([query(host, 4), query(host, 6)])).flat();
    if (answers.length === 0) throw new Error(`${host} has no address`);
    return answers;
  };
}
