/**
 * The OCI media types Joule reads and writes, and zod schemas for the JSON
 * documents that come over the wire: image manifests, image indexes (also
 * `index.json` of an image layout) and the Wasm config of the CNCF TAG
 * Runtime artifact format. Every document from a registry or a layout is
 * parsed with these before anything in it is used.
 */
import { z } from "zod";
import { DIGEST } from "./digest.ts";

export const MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  wasmConfig: "application/vnd.wasm.config.v0+json",
  wasmLayer: "application/wasm",
  /** One shipped file of capabilities.files, its guest path in the title annotation (docs/artifacts.md). */
  fileLayer: "application/vnd.joule.file.v1",
} as const;

/** What a client asks for when it wants a manifest: every form, so a wrong one is named, not a 404. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.manifest,
  MEDIA_TYPES.index,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
].join(", ");

/** joule.json of the function travels as this manifest annotation (docs/artifacts.md). */
export const FUNCTION_ANNOTATION = "dev.joule.function.manifest";
export const TITLE_ANNOTATION = "org.opencontainers.image.title";
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** The largest manifest Joule reads (the limit distribution and containerd use). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** The largest config blob: it lists imports and exports, nothing more. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

const annotations = z.record(z.string(), z.string());

export const descriptorSchema = z.object({
  mediaType: z.string().min(1).max(255),
  digest: z.string().regex(DIGEST, "must be sha256:<64 hex digits>"),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  annotations: annotations.optional(),
  artifactType: z.string().optional(),
  urls: z.array(z.string()).optional(),
  platform: z.unknown().optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MEDIA_TYPES.manifest).optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotations.optional(),
});

export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const imageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MEDIA_TYPES.index).optional(),
  manifests: z.array(descriptorSchema),
  annotations: annotations.optional(),
});

export type ImageIndex = z.infer<typeof imageIndexSchema>;

/** The config of a Wasm component artifact (CNCF TAG Runtime, "Wasm OCI Artifact layout"). */
export const wasmConfigSchema = z.object({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.literal("wasm"),
  os: z.string().min(1),
  layerDigests: z.array(z.string().regex(DIGEST)),
  component: z
    .object({
      exports: z.array(z.string()),
      imports: z.array(z.string()),
      target: z.string().optional(),
    })
    .optional(),
});

export type WasmConfig = z.infer<typeof wasmConfigSchema>;

export const layoutMarkerSchema = z.object({ imageLayoutVersion: z.literal("1.0.0") });
