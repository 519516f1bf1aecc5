/**
 * The host's functions as OCI artifacts, in the data dir: `oci-layout`,
 * `index.json` (one entry per deployed function, tagged with its name) and
 * the manifest, config and layer blobs (the component's, and one per
 * shipped file) in `blobs/sha256/` beside the rest of the store's blobs.
 * What is stored for a function is the artifact it would push: the same
 * manifest, config and layer bytes. Reads are verified against their
 * digests.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Artifact } from "../oci/artifact.ts";
import { canonicalJson } from "../oci/canonical-json.ts";
import { MEDIA_TYPES, REF_NAME_ANNOTATION } from "../oci/media-types.ts";
import { writeAtomic } from "./atomic.ts";
import type { FunctionRecord, FunctionStore } from "./function-store.ts";

export class ArtifactStore {
  readonly #store: FunctionStore;
  /** index.json rewrites, one after another. */
  #indexing: Promise<unknown> = Promise.resolve();

  constructor(store: FunctionStore) {
    this.#store = store;
  }

  async open(): Promise<void> {
    const marker = join(this.#store.root, "oci-layout");
    const text = await readFile(marker, "utf8").catch(() => undefined);
    if (text === undefined) await writeFile(marker, `${canonicalJson({ imageLayoutVersion: "1.0.0" })}\n`);
  }

  /** Stores the layers, the config, then the manifest (each verified, each once by digest). */
  async put(artifact: Artifact): Promise<void> {
    for (const part of [artifact.layer, ...artifact.files, artifact.config, artifact.manifest]) {
      const digest = await this.#store.putBlob(part.bytes);
      if (digest !== part.descriptor.digest)
        throw new Error(`artifact blob ${part.descriptor.digest} has another digest`);
    }
  }

  /** The artifact of a manifest digest, if every blob of it is here and intact. */
  async get(manifestDigest: string): Promise<Artifact | undefined> {
    try {
      const manifestBytes = await this.#store.readBlob(manifestDigest);
      const manifest = JSON.parse(manifestBytes.toString("utf8")) as {
        config: Artifact["config"]["descriptor"];
        layers: Array<Artifact["layer"]["descriptor"]>;
      };
      const [layer, ...files] = manifest.layers;
      if (!layer) return undefined;
      return {
        manifest: {
          descriptor: { mediaType: MEDIA_TYPES.manifest, digest: manifestDigest, size: manifestBytes.byteLength },
          bytes: manifestBytes,
        },
        config: { descriptor: manifest.config, bytes: await this.#store.readBlob(manifest.config.digest) },
        layer: { descriptor: layer, bytes: await this.#store.readBlob(layer.digest) },
        files: await Promise.all(
          files.map(async (descriptor) => ({ descriptor, bytes: await this.#store.readBlob(descriptor.digest) })),
        ),
      };
    } catch {
      return undefined;
    }
  }

  /** Rewrites index.json from the deployed records: one entry per function, by name. */
  writeIndex(records: readonly FunctionRecord[]): Promise<void> {
    const manifests = records
      .filter((r) => r.artifact)
      .map((r) => ({
        mediaType: MEDIA_TYPES.manifest,
        digest: r.artifact?.digest,
        size: r.artifact?.size,
        annotations: { [REF_NAME_ANNOTATION]: r.name },
      }))
      .sort((a, b) => a.annotations[REF_NAME_ANNOTATION].localeCompare(b.annotations[REF_NAME_ANNOTATION]));
    const text = `${canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests })}\n`;
    const next = this.#indexing.then(() => writeAtomic(this.#store.tmpDir, join(this.#store.root, "index.json"), text));
    this.#indexing = next.catch(() => undefined);
    return next;
  }
}
