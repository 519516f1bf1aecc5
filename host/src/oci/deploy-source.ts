/**
 * Deploy by reference: the host resolves `oci://<registry>/<repo>:<tag>` (or
 * `@sha256:…`) to a manifest digest once, and uses its own stored copy of
 * that digest if it has one; otherwise it pulls, verifying every blob. The
 * caller records the digest, so the function version never changes when the
 * tag moves later. The caller names the registry, so the host connects only
 * where the address policy lets it (registry-address-policy.ts).
 */
import type { Config } from "../config.ts";
import type { Artifact, ArtifactManifest } from "./artifact.ts";
import { credentialLookup } from "./credentials.ts";
import { formatReference, parseReference } from "./reference.ts";
import type { RegistryRefusal } from "./registry-address-policy.ts";
import { pull } from "./transfer.ts";

export interface ResolvedArtifact {
  /** The reference as given, normalized (`oci://` dropped). */
  ref: string;
  digest: string;
  artifact: Artifact;
  parsed: ArtifactManifest;
  /** False when the host already had the digest and fetched nothing but the tag. */
  fetched: boolean;
}

export async function resolveForDeploy(
  text: string,
  options: {
    config: Config;
    local: (digest: string) => Promise<Artifact | undefined>;
    /** A connection the address policy refused, with what the caller is not told (for the operator's log). */
    onRefused?: ((refusal: RegistryRefusal) => void) | undefined;
  },
): Promise<ResolvedArtifact> {
  const ref = parseReference(text);
  const { config } = options;
  const result = await pull(ref, {
    maxLayerBytes: config.ociMaxLayerBytes,
    insecure: config.insecureRegistries.includes(ref.registry),
    credentials: credentialLookup({ file: config.registryAuthFile }),
    local: options.local,
    addressPolicy: {
      privateRegistries: config.privateRegistries,
      dnsServers: config.dnsServers,
      onRefused: options.onRefused,
    },
  });
  return { ref: formatReference(ref), ...result };
}
