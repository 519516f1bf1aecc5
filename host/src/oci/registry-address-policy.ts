/**
 * Where the host's own pulls may connect. A deploy by reference makes the
 * host fetch from a registry the caller names, so without a rule a caller
 * could point it at the cloud metadata service or at anything else on the
 * host's network. The rule is the guests' outbound one (net/net-policy.ts):
 * public addresses are reachable, special ones (private, loopback,
 * link-local, CGNAT, unique-local, ...) only for a registry the operator
 * lists in JOULE_PRIVATE_REGISTRIES (`host:port`, or `host` for any port),
 * and cloud metadata addresses never. It applies to every connection of a
 * pull, the token realm and each redirect hop included (registries redirect
 * blob downloads to storage, which must be listed too if it is private).
 *
 * The CLI's `joule push`/`pull` run on the user's machine against the
 * user's registry and set no policy; only the host's deploy path does.
 */
import type { Agent } from "undici";
import { JouleError } from "../errors.ts";
import { checkedAgent } from "../net/checked-agent.ts";
import { type AddressKind, canonicalAddress, type Destination, type Exemption } from "../net/net-policy.ts";
import { resolver } from "../net/resolver.ts";
import { parseRegistryHost } from "./reference.ts";

export interface RegistryAddressPolicy {
  /** JOULE_PRIVATE_REGISTRIES as configured (validated by config.ts). */
  privateRegistries: readonly string[];
  /** JOULE_DNS_SERVERS: resolve with these instead of the system resolver. */
  dnsServers: readonly string[];
  /** Told what the caller is not (the address and its kind), for the operator's log. */
  onRefused?: ((refusal: RegistryRefusal) => void) | undefined;
}

export interface RegistryRefusal {
  /** host:port of the refused connection. */
  destination: string;
  address: string;
  kind: AddressKind;
}

function hostPort({ hostname, port }: Destination): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/** Whether the operator listed this destination; metadata is refused whatever the list says. */
export function listedRegistries(entries: readonly string[]): Exemption {
  const listed = entries.flatMap((entry) => {
    const parsed = parseRegistryHost(entry);
    return parsed ? [{ host: canonicalAddress(parsed.hostname), port: parsed.port }] : [];
  });
  return (kind, destination) => {
    if (kind === "metadata") return false;
    const host = canonicalAddress(destination.hostname);
    return listed.some((entry) => entry.host === host && (entry.port === undefined || entry.port === destination.port));
  };
}

/** The dispatcher a pull under this policy sends every request through; close it when the pull ends. */
export function registryDispatcher(policy: RegistryAddressPolicy): Agent {
  return checkedAgent({
    resolve: resolver(policy.dnsServers),
    exempt: listedRegistries(policy.privateRegistries),
    refused: (destination, { address, kind }) => {
      const where = hostPort(destination);
      policy.onRefused?.({ destination: where, address, kind });
      // Neither the address nor its kind: the caller learns no more of the host's network than it must.
      return new JouleError(
        "JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED",
        `the host does not pull from ${where}: it is not a public address; an operator who trusts that registry lists it in JOULE_PRIVATE_REGISTRIES (cloud metadata addresses are never allowed)`,
        { destination: where },
      );
    },
  });
}
