/**
 * Moving artifacts between a registry and here. Push: layers, config, then
 * the manifest (a registry refuses a manifest whose blobs it lacks), each
 * blob skipped when the registry already has it. Pull: resolve the tag to a
 * digest, fetch the manifest by that digest, then its blobs, each bounded
 * and verified; then check the tag still names that digest, so what was
 * pulled is exactly what the tag named from start to end.
 */
import { JouleError } from "../errors.ts";
import { type Artifact, type ArtifactManifest, parseArtifactManifest, parseWasmConfig } from "./artifact.ts";
import type { CredentialLookup } from "./credentials.ts";
import { MAX_CONFIG_BYTES, MEDIA_TYPES } from "./media-types.ts";
import { formatReference, type Reference } from "./reference.ts";
import type { RegistryAddressPolicy } from "./registry-address-policy.ts";
import { RegistryClient } from "./registry-client.ts";

export interface TransferOptions {
  credentials?: CredentialLookup | undefined;
  insecure?: boolean | undefined;
}

export interface PushResult {
  digest: string;
  /** Blobs sent, and blobs the registry already had. */
  uploaded: number;
  skipped: number;
  bytesSent: number;
}

export async function push(
  artifact: Artifact,
  ref: Reference,
  options: TransferOptions & { chunkSize?: number | undefined } = {},
): Promise<PushResult> {
  const digest = artifact.manifest.descriptor.digest;
  if (ref.digest && ref.digest !== digest) {
    throw new JouleError(
      "JOULE_ERR_OCI_REFERENCE_INVALID",
      `the reference names ${ref.digest} but the artifact is ${digest}: push by tag, or by the artifact's digest`,
    );
  }
  const client = new RegistryClient(ref.registry, ref.repository, { ...options, actions: "pull,push" });
  let uploaded = 0;
  let skipped = 0;
  let bytesSent = 0;
  for (const part of [artifact.layer, ...artifact.files, artifact.config]) {
    const outcome = await client.putBlob(part.bytes, part.descriptor.digest, { chunkSize: options.chunkSize });
    if (outcome === "uploaded") {
      uploaded++;
      bytesSent += part.bytes.byteLength;
    } else skipped++;
  }
  await client.putManifest(ref.tag ?? digest, artifact.manifest.bytes, MEDIA_TYPES.manifest);
  return { digest, uploaded, skipped, bytesSent: bytesSent + artifact.manifest.bytes.byteLength };
}

export interface PullOptions extends TransferOptions {
  maxLayerBytes: number;
  /**
   * Called with the manifest digest once the reference is resolved: an
   * artifact returned here is used instead of fetching (a store that has
   * the digest never pulls it again).
   */
  local?: ((digest: string) => Promise<Artifact | undefined>) | undefined;
  /** Where the pull may connect: the host sets it for a deploy (JOULE_PRIVATE_REGISTRIES); the CLI does not. */
  addressPolicy?: RegistryAddressPolicy | undefined;
}

export interface PullResult {
  digest: string;
  artifact: Artifact;
  parsed: ArtifactManifest;
  /** False when `local` had it and nothing but the tag was asked of the registry. */
  fetched: boolean;
}

export async function pull(ref: Reference, options: PullOptions): Promise<PullResult> {
  const client = new RegistryClient(ref.registry, ref.repository, { ...options, actions: "pull" });
  try {
    return await pullWith(client, ref, options);
  } finally {
    await client.close();
  }
}

async function pullWith(client: RegistryClient, ref: Reference, options: PullOptions): Promise<PullResult> {
  const what = formatReference(ref);
  let digest = ref.digest;
  if (!digest) {
    digest = await client.resolve(ref.tag ?? "latest");
    if (!digest) throw new JouleError("JOULE_ERR_OCI_NOT_FOUND", `${what}: no such tag in the registry`);
  }
  const local = await options.local?.(digest);
  if (local) {
    const parsed = parseArtifactManifest(local.manifest.bytes, { maxLayerBytes: options.maxLayerBytes });
    return { digest, artifact: local, parsed, fetched: false };
  }
  const manifest = await client.getManifest(digest);
  const parsed = parseArtifactManifest(manifest.bytes, {
    maxLayerBytes: options.maxLayerBytes,
    contentType: manifest.contentType,
  });
  if (parsed.config.size > MAX_CONFIG_BYTES) {
    throw new JouleError("JOULE_ERR_OCI_TOO_LARGE", `the config blob is ${parsed.config.size} bytes, over 1 MiB`);
  }
  const config = await client.getBlob(parsed.config, "the config blob");
  parseWasmConfig(config, parsed.config, parsed.manifest.layers);
  const layer = await client.getBlob(parsed.layer, "the component layer");
  const files: Artifact["files"] = [];
  for (const file of parsed.files) {
    files.push({ descriptor: file.descriptor, bytes: await client.getBlob(file.descriptor, `the file ${file.path}`) });
  }
  if (ref.tag && !ref.digest) {
    const now = await client.resolve(ref.tag);
    if (now !== digest) {
      throw new JouleError(
        "JOULE_ERR_OCI_TAG_MOVED",
        `${what} moved from ${digest} to ${now ?? "nothing"} while it was being pulled: pull again, or pull by digest`,
        { before: digest, after: now },
      );
    }
  }
  return {
    digest,
    artifact: {
      manifest: {
        descriptor: { mediaType: MEDIA_TYPES.manifest, digest, size: manifest.bytes.byteLength },
        bytes: manifest.bytes,
      },
      config: { descriptor: parsed.config, bytes: config },
      layer: { descriptor: parsed.layer, bytes: layer },
      files,
    },
    parsed,
    fetched: true,
  };
}
