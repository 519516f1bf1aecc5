/**
 * A function as an OCI artifact, in the CNCF TAG Runtime Wasm format:
 *
 *   manifest (application/vnd.oci.image.manifest.v1+json)
 *     config  application/vnd.wasm.config.v0+json  {architecture "wasm", os "wasip2", layerDigests, component {imports, exports}}
 *     layers  [ application/wasm ]                  the component, byte for byte as built
 *     annotations["dev.joule.function.manifest"]    the function's joule.json, canonical JSON
 *
 * Documents are canonical JSON (sorted keys, no timestamps), so the same
 * component and joule.json always give the same manifest digest.
 * `parseArtifactManifest` and `parseWasmConfig` are the edge for manifests
 * from a registry or a layout: everything is checked before it is used.
 */
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
}

function blob(mediaType: string, bytes: Uint8Array, annotations?: Record<string, string>): Blob {
  return {
    descriptor: { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...(annotations ? { annotations } : {}) },
    bytes,
  };
}

/** Builds the artifact of a component and its joule.json (as written, validated). Deterministic. */
export async function packageFunction(component: Uint8Array, functionManifest: unknown): Promise<Artifact> {
  const parsed = manifestSchema.safeParse(functionManifest);
  if (!parsed.success) throw new JouleError("JOULE_ERR_MANIFEST_INVALID", "joule.json is invalid");
  const layer = blob(MEDIA_TYPES.wasmLayer, component, { [TITLE_ANNOTATION]: "component.wasm" });
  const world = await componentWorld(component);
  const config: WasmConfig = {
    architecture: "wasm",
    os: WASM_OS,
    layerDigests: [layer.descriptor.digest],
    component: { imports: world.imports, exports: world.exports },
  };
  const configBlob = blob(MEDIA_TYPES.wasmConfig, new TextEncoder().encode(canonicalJson(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: configBlob.descriptor,
    layers: [layer.descriptor],
    annotations: {
      [FUNCTION_ANNOTATION]: canonicalJson(functionManifest),
      [TITLE_ANNOTATION]: parsed.data.name,
    },
  };
  return {
    manifest: blob(MEDIA_TYPES.manifest, new TextEncoder().encode(canonicalJson(manifest))),
    config: configBlob,
    layer,
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
  const [layer, ...extra] = manifest.layers;
  if (!layer || extra.length > 0 || layer.mediaType !== MEDIA_TYPES.wasmLayer) {
    throw new JouleError(
      "JOULE_ERR_OCI_MEDIA_TYPE",
      `a Wasm component artifact has exactly one ${MEDIA_TYPES.wasmLayer} layer; this one has ${manifest.layers.map((l) => l.mediaType).join(", ") || "none"}`,
    );
  }
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
  return { manifest, config: manifest.config, layer, functionManifest, functionManifestRaw };
}

/** Checks the config blob (already verified against its digest) describes the layer it came with. */
export function parseWasmConfig(bytes: Uint8Array, descriptor: Descriptor, layer: Descriptor): WasmConfig {
  verifyBlob(bytes, descriptor, "the config blob");
  const parsed = wasmConfigSchema.safeParse(parseJson(bytes, "the config"));
  if (!parsed.success) {
    const list = problems(parsed.error);
    throw new JouleError("JOULE_ERR_OCI_MANIFEST_INVALID", `the Wasm config is invalid: ${list.join("; ")}`, {
      problems: list,
    });
  }
  if (parsed.data.layerDigests.length !== 1 || parsed.data.layerDigests[0] !== layer.digest) {
    throw new JouleError(
      "JOULE_ERR_OCI_MANIFEST_INVALID",
      "the Wasm config's layerDigests do not name the manifest's layer",
    );
  }
  return parsed.data;
}
