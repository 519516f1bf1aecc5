/**
 * A function as an OCI artifact, in the CNCF TAG Runtime Wasm format:
 *
 *   manifest (application/vnd.oci.image.manifest.v1+json)
 *     config  application/vnd.wasm.config.v0+json  {architecture "wasm", os "wasip2", layerDigests, component {imports, exports}}
 *     layers  [ application/wasm,                   the component, byte for byte as built
 *               application/vnd.joule.file.v1 … ]   one per shipped file (capabilities.files), titled with its guest path
 *     annotations["dev.joule.function.manifest"]    the function's joule.json, canonical JSON
 *
 * Documents are canonical JSON (sorted keys, no timestamps), so the same
 * component and joule.json always give the same manifest digest.
 * `parseArtifactManifest` and `parseWasmConfig` are the edge for manifests
 * from a registry or a layout: everything is checked before it is used.
 */

import { byPath, MAX_BUNDLE_BYTES, MAX_FILE_BYTES, MAX_FILES, type ShippedFile } from "../capabilities/files-bundle.ts";
import { checkGuestPath } from "../capabilities/files-paths.ts";
import { JouleError } from "../errors.ts";
import { type Manifest, manifestSchema } from "../manifest.ts";
import { canonicalJson } from "./canonical-json.ts";
import { componentWorld } from "./component-wit.ts";
import { sha256, verifyBlob } from "./digest.ts";
import {
  type Descriptor,
  FUNCTION_ANNOTATION,
  type ImageManifest,
  imageManifestSchema,
  MEDIA_TYPES,
  TITLE_ANNOTATION,
  type WasmConfig,
  wasmConfigSchema,
} from "./media-types.ts";

export const WASM_OS = "wasip2";
/** joule.json in an annotation stays small: env values are the only free text in it. */
const MAX_FUNCTION_ANNOTATION_BYTES = 256 * 1024;

export interface Blob {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export interface Artifact {
  manifest: Blob;
  config: Blob;
  layer: Blob;
  /** The shipped files, one layer each in path order, titled with the guest path. */
  files: Blob[];
}

/** The shipped files an artifact carries, as a deploy takes them. */
export function shippedFiles(artifact: Artifact): ShippedFile[] {
  return artifact.files.map((file) => ({
    path: file.descriptor.annotations?.[TITLE_ANNOTATION] ?? "",
    bytes: file.bytes,
  }));
}

function blob(mediaType: string, bytes: Uint8Array, annotations?: Record<string, string>): Blob {
  return {
    descriptor: { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...(annotations ? { annotations } : {}) },
    bytes,
  };
}

/**
 * Builds the artifact of a component, its joule.json (as written,
 * validated) and the files of its capabilities.files. Deterministic: files
 * go in path order.
 */
export async function packageFunction(
  component: Uint8Array,
  functionManifest: unknown,
  files: readonly ShippedFile[] = [],
): Promise<Artifact> {
  const parsed = manifestSchema.safeParse(functionManifest);
  if (!parsed.success) throw new JouleError("JOULE_ERR_MANIFEST_INVALID", "joule.json is invalid");
  const layer = blob(MEDIA_TYPES.wasmLayer, component, { [TITLE_ANNOTATION]: "component.wasm" });
  const fileBlobs = [...files]
    .sort(byPath)
    .map((file) => blob(MEDIA_TYPES.fileLayer, file.bytes, { [TITLE_ANNOTATION]: file.path }));
  const layers = [layer, ...fileBlobs].map((b) => b.descriptor);
  const world = await componentWorld(component);
  const config: WasmConfig = {
    architecture: "wasm",
    os: WASM_OS,
    layerDigests: layers.map((d) => d.digest),
    component: { imports: world.imports, exports: world.exports },
  };
  const configBlob = blob(MEDIA_TYPES.wasmConfig, new TextEncoder().encode(canonicalJson(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: configBlob.descriptor,
    layers,
    annotations: {
      [FUNCTION_ANNOTATION]: canonicalJson(functionManifest),
      [TITLE_ANNOTATION]: parsed.data.name,
    },
  };
  return {
    manifest: blob(MEDIA_TYPES.manifest, new TextEncoder().encode(canonicalJson(manifest))),
    config: configBlob,
    layer,
    files: fileBlobs,
  };
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new JouleError("JOULE_ERR_OCI_MANIFEST_INVALID", `${what} is not UTF-8 JSON`);
  }
}

function problems(error: { issues: Array<{ path: PropertyKey[]; message: string }> }): string[] {
  return error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
}

export interface ArtifactManifest {
  manifest: ImageManifest;
  config: Descriptor;
  layer: Descriptor;
  /** The file layers, each with the guest path its title names, checked. */
  files: Array<{ path: string; descriptor: Descriptor }>;
  /** joule.json as packaged, validated; undefined when the artifact carries none (a plain Wasm artifact). */
  functionManifest: Manifest | undefined;
  /** The raw joule.json object (as packaged), for re-packaging. */
  functionManifestRaw: unknown;
}

/**
 * Checks a manifest's bytes are a Wasm component artifact Joule can run:
 * an image manifest (not an index), the Wasm config media type, exactly one
 * `application/wasm` layer no larger than `maxLayerBytes`.
 */
export function parseArtifactManifest(
  bytes: Uint8Array,
  options: { maxLayerBytes: number; contentType?: string | undefined },
): ArtifactManifest {
  const json = parseJson(bytes, "the manifest") as Record<string, unknown> | null;
  const mediaType = (json && typeof json === "object" && json.mediaType) || options.contentType;
  if (
    mediaType === MEDIA_TYPES.index ||
    mediaType === MEDIA_TYPES.dockerManifestList ||
    (json && typeof json === "object" && "manifests" in json)
  ) {
    throw new JouleError(
      "JOULE_ERR_OCI_INDEX_NOT_MANIFEST",
      "the reference names an image index (a list of manifests), not a Wasm component artifact: reference the artifact's own manifest by its digest",
    );
  }
  if (mediaType !== undefined && mediaType !== MEDIA_TYPES.manifest) {
    throw new JouleError(
      "JOULE_ERR_OCI_MEDIA_TYPE",
      `the manifest has media type ${String(mediaType)}; Joule reads ${MEDIA_TYPES.manifest}`,
    );
  }
  const parsed = imageManifestSchema.safeParse(json);
  if (!parsed.success) {
    const list = problems(parsed.error);
    throw new JouleError("JOULE_ERR_OCI_MANIFEST_INVALID", `the manifest is invalid: ${list.join("; ")}`, {
      problems: list,
    });
  }
  const manifest = parsed.data;
  if (manifest.config.mediaType !== MEDIA_TYPES.wasmConfig) {
    throw new JouleError(
      "JOULE_ERR_OCI_MEDIA_TYPE",
      `the config has media type ${manifest.config.mediaType}, not ${MEDIA_TYPES.wasmConfig}: this is not a Wasm component artifact`,
    );
  }
  const [layer, ...rest] = manifest.layers;
  if (!layer || layer.mediaType !== MEDIA_TYPES.wasmLayer || rest.some((l) => l.mediaType === MEDIA_TYPES.wasmLayer)) {
    throw new JouleError(
      "JOULE_ERR_OCI_MEDIA_TYPE",
      `a Wasm component artifact has exactly one ${MEDIA_TYPES.wasmLayer} layer, the first; this one has ${manifest.layers.map((l) => l.mediaType).join(", ") || "none"}`,
    );
  }
  const files = fileLayers(rest);
  if (layer.size > options.maxLayerBytes) {
    throw new JouleError(
      "JOULE_ERR_OCI_TOO_LARGE",
      `the component layer is ${layer.size} bytes, over the limit of ${options.maxLayerBytes} (JOULE_OCI_MAX_LAYER_BYTES)`,
      { size: layer.size, limit: options.maxLayerBytes },
    );
  }
  let functionManifestRaw: unknown;
  let functionManifest: Manifest | undefined;
  const annotation = manifest.annotations?.[FUNCTION_ANNOTATION];
  if (annotation !== undefined) {
    if (annotation.length > MAX_FUNCTION_ANNOTATION_BYTES) {
      throw new JouleError("JOULE_ERR_OCI_TOO_LARGE", `the ${FUNCTION_ANNOTATION} annotation is over 256 KiB`);
    }
    try {
      functionManifestRaw = JSON.parse(annotation);
    } catch {
      throw new JouleError("JOULE_ERR_OCI_MANIFEST_INVALID", `the ${FUNCTION_ANNOTATION} annotation is not JSON`);
    }
    const fn = manifestSchema.safeParse(functionManifestRaw);
    if (!fn.success) {
      const list = problems(fn.error);
      throw new JouleError(
        "JOULE_ERR_OCI_MANIFEST_INVALID",
        `the joule.json the artifact carries is invalid: ${list.join("; ")}`,
        { problems: list },
      );
    }
    functionManifest = fn.data;
  }
  return { manifest, config: manifest.config, layer, files, functionManifest, functionManifestRaw };
}

/**
 * The layers after the component: shipped files, checked by their
 * descriptors before any byte of them is fetched, with the bounds a deploy
 * puts on files (capabilities/files-bundle.ts).
 */
function fileLayers(layers: readonly Descriptor[]): ArtifactManifest["files"] {
  const invalid = (message: string, code = "JOULE_ERR_OCI_MANIFEST_INVALID" as const) =>
    new JouleError(code, `the artifact's files: ${message}`);
  if (layers.length > MAX_FILES) throw invalid(`${layers.length} file layers, over the limit of ${MAX_FILES}`);
  const seen = new Set<string>();
  let total = 0;
  return layers.map((descriptor, i) => {
    if (descriptor.mediaType !== MEDIA_TYPES.fileLayer) {
      throw new JouleError(
        "JOULE_ERR_OCI_MEDIA_TYPE",
        `layer ${i + 1} has media type ${descriptor.mediaType}; after the component, Joule reads only shipped files (${MEDIA_TYPES.fileLayer})`,
      );
    }
    const path = descriptor.annotations?.[TITLE_ANNOTATION];
    if (path === undefined) throw invalid(`layer ${i + 1} has no ${TITLE_ANNOTATION} annotation naming its guest path`);
    const problem = checkGuestPath(path);
    if (problem) throw invalid(`the guest path ${JSON.stringify(path)} of layer ${i + 1} ${problem}`);
    if (seen.has(path)) throw invalid(`${path} is in two layers`);
    seen.add(path);
    if (descriptor.size > MAX_FILE_BYTES) {
      throw new JouleError(
        "JOULE_ERR_OCI_TOO_LARGE",
        `the file ${path} is ${descriptor.size} bytes, over ${MAX_FILE_BYTES}`,
      );
    }
    total += descriptor.size;
    if (total > MAX_BUNDLE_BYTES) {
      throw new JouleError(
        "JOULE_ERR_OCI_TOO_LARGE",
        `the artifact's files are over ${MAX_BUNDLE_BYTES} bytes together`,
      );
    }
    return { path, descriptor };
  });
}

/** Checks the config blob (verified against its digest here) describes the layers it came with. */
export function parseWasmConfig(bytes: Uint8Array, descriptor: Descriptor, layers: readonly Descriptor[]): WasmConfig {
  verifyBlob(bytes, descriptor, "the config blob");
  const parsed = wasmConfigSchema.safeParse(parseJson(bytes, "the config"));
  if (!parsed.success) {
    const list = problems(parsed.error);
    throw new JouleError("JOULE_ERR_OCI_MANIFEST_INVALID", `the Wasm config is invalid: ${list.join("; ")}`, {
      problems: list,
    });
  }
  const digests = parsed.data.layerDigests;
  if (digests.length !== layers.length || layers.some((layer, i) => digests[i] !== layer.digest)) {
    throw new JouleError(
      "JOULE_ERR_OCI_MANIFEST_INVALID",
      "the Wasm config's layerDigests do not name the manifest's layers, in order",
    );
  }
  return parsed.data;
}
