/**
 * OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/<hex>`),
 * as `joule package` and `joule pull` write them and `skopeo copy oci:<dir>:<tag>`
 * reads them. Blobs are written to a temporary file in the layout, then
 * renamed: a reader never sees a partial blob. Everything read back is
 * verified against its digest, as if it came from a registry.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MAX_FILE_BYTES } from "../capabilities/files-bundle.ts";
import { JouleError } from "../errors.ts";
import { type Artifact, type ArtifactManifest, parseArtifactManifest, parseWasmConfig } from "./artifact.ts";
import { canonicalJson } from "./canonical-json.ts";
import { digestHex, verifyBlob } from "./digest.ts";
import {
  type Descriptor,
  type ImageIndex,
  imageIndexSchema,
  layoutMarkerSchema,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
  REF_NAME_ANNOTATION,
} from "./media-types.ts";

export function blobPath(dir: string, digest: string): string {
  return join(dir, "blobs", "sha256", digestHex(digest));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Writes one blob by digest unless it is there; temp file, then rename. */
export async function writeBlob(dir: string, bytes: Uint8Array, digest: string): Promise<void> {
  verifyBlob(bytes, { digest }, `blob ${digest}`);
  const target = blobPath(dir, digest);
  if (await exists(target)) return;
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  const temp = join(dir, `.tmp-${randomBytes(8).toString("hex")}`);
  try {
    await writeFile(temp, bytes);
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function writeSmall(dir: string, name: string, text: string): Promise<void> {
  const temp = join(dir, `.tmp-${randomBytes(8).toString("hex")}`);
  await writeFile(temp, text);
  await rename(temp, join(dir, name));
}

async function readIndex(dir: string): Promise<ImageIndex | undefined> {
  const text = await readFile(join(dir, "index.json"), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new JouleError("JOULE_ERR_OCI_LAYOUT_INVALID", `${dir}/index.json is not JSON`);
  }
  const parsed = imageIndexSchema.safeParse(json);
  if (!parsed.success)
    throw new JouleError("JOULE_ERR_OCI_LAYOUT_INVALID", `${dir}/index.json is not an OCI image index`);
  return parsed.data;
}

/**
 * Writes an artifact into a layout under `tag` (the index entry's
 * `org.opencontainers.image.ref.name`), replacing an entry of that tag and
 * keeping the others; blobs first, index last.
 */
export async function writeLayout(dir: string, artifact: Artifact, tag: string): Promise<Descriptor> {
  await mkdir(dir, { recursive: true });
  for (const part of [artifact.layer, ...artifact.files, artifact.config, artifact.manifest]) {
    await writeBlob(dir, part.bytes, part.descriptor.digest);
  }
  await writeSmall(dir, "oci-layout", `${canonicalJson({ imageLayoutVersion: "1.0.0" })}\n`);
  const previous = (await readIndex(dir).catch(() => undefined))?.manifests ?? [];
  const entry: Descriptor = {
    mediaType: MEDIA_TYPES.manifest,
    digest: artifact.manifest.descriptor.digest,
    size: artifact.manifest.descriptor.size,
    annotations: { [REF_NAME_ANNOTATION]: tag },
  };
  const manifests = [...previous.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag), entry].sort((a, b) =>
    (a.annotations?.[REF_NAME_ANNOTATION] ?? "").localeCompare(b.annotations?.[REF_NAME_ANNOTATION] ?? ""),
  );
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests };
  await writeSmall(dir, "index.json", `${canonicalJson(index)}\n`);
  return entry;
}

export async function isLayout(dir: string): Promise<boolean> {
  return exists(join(dir, "oci-layout"));
}

async function readVerified(dir: string, descriptor: { digest: string; size: number }, what: string, max: number) {
  if (descriptor.size > max) {
    throw new JouleError("JOULE_ERR_OCI_TOO_LARGE", `${what} is ${descriptor.size} bytes, over the limit of ${max}`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(blobPath(dir, descriptor.digest));
  } catch {
    throw new JouleError(
      "JOULE_ERR_OCI_LAYOUT_INVALID",
      `${what} (${descriptor.digest}) is missing from the layout ${dir}`,
    );
  }
  verifyBlob(bytes, descriptor, what);
  return bytes;
}

export interface LayoutArtifact {
  artifact: Artifact;
  parsed: ArtifactManifest;
  tag: string | undefined;
}

/** Reads the artifact tagged `tag` (or the layout's only one), verifying every blob. */
export async function readLayout(
  dir: string,
  options: { tag?: string | undefined; maxLayerBytes: number },
): Promise<LayoutArtifact> {
  let marker: unknown;
  try {
    marker = JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"));
  } catch {
    throw new JouleError(
      "JOULE_ERR_OCI_LAYOUT_INVALID",
      `${dir} is not an OCI image layout (no readable oci-layout file)`,
    );
  }
  if (!layoutMarkerSchema.safeParse(marker).success) {
    throw new JouleError("JOULE_ERR_OCI_LAYOUT_INVALID", `${dir}/oci-layout is not imageLayoutVersion 1.0.0`);
  }
  const index = await readIndex(dir);
  const manifests = index?.manifests ?? [];
  const tagged = options.tag
    ? manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === options.tag)
    : manifests;
  if (tagged.length !== 1 || !tagged[0]) {
    const tags = manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? m.digest).join(", ");
    throw new JouleError(
      "JOULE_ERR_OCI_LAYOUT_INVALID",
      options.tag
        ? `the layout ${dir} has no artifact tagged ${options.tag} (it has: ${tags || "none"})`
        : `the layout ${dir} holds ${manifests.length} artifacts (${tags}); name one with :<tag>`,
    );
  }
  const descriptor = tagged[0];
  const manifestBytes = await readVerified(dir, descriptor, "the manifest", MAX_MANIFEST_BYTES);
  const parsed = parseArtifactManifest(manifestBytes, {
    maxLayerBytes: options.maxLayerBytes,
    contentType: descriptor.mediaType,
  });
  const config = await readVerified(dir, parsed.config, "the config blob", 1024 * 1024);
  parseWasmConfig(config, parsed.config, parsed.manifest.layers);
  const layer = await readVerified(dir, parsed.layer, "the component layer", options.maxLayerBytes);
  const files: Artifact["files"] = [];
  for (const file of parsed.files) {
    const bytes = await readVerified(dir, file.descriptor, `the file ${file.path}`, MAX_FILE_BYTES);
    files.push({ descriptor: file.descriptor, bytes });
  }
  return {
    artifact: {
      manifest: {
        descriptor: { mediaType: MEDIA_TYPES.manifest, digest: descriptor.digest, size: descriptor.size },
        bytes: manifestBytes,
      },
      config: { descriptor: parsed.config, bytes: config },
      layer: { descriptor: parsed.layer, bytes: layer },
      files,
    },
    parsed,
    tag: descriptor.annotations?.[REF_NAME_ANNOTATION],
  };
}
