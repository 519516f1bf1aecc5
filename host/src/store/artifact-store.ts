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
import { type Descriptor, MEDIA_TYPES, REF_NAME_ANNOTATION } from "../oci/media-types.ts";
import { writeAtomic } from "./atomic.ts";
import type { FunctionRecord, FunctionStore } from "./function-store.ts";

/** What `put` stored, so read without checking again. */
interface StoredManifest {
  config: Descriptor;
  layers: Descriptor[];
}

/** Artifacts whose blob lists are kept in memory: a pull asks for every blob of one. */
const KEPT_DIGEST_LISTS = 64;

export class ArtifactStore {
  readonly #store: FunctionStore;
  /** Manifest digest → its blobs' digests, for /v2 blob requests (blobDigests). */
  readonly #digests = new Map<string, string[]>();
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

  /** A stored manifest (written by `put`, so trusted) and its bytes; undefined if it is not here. */
  async #manifest(digest: string): Promise<{ bytes: Buffer; manifest: StoredManifest } | undefined> {
    try {
      const bytes = await this.#store.readBlob(digest);
      const manifest = JSON.parse(bytes.toString("utf8")) as StoredManifest | null;
      // A record that names some other blob: not an artifact.
      if (typeof manifest?.config?.digest !== "string" || !Array.isArray(manifest.layers)) return undefined;
      return { bytes, manifest };
    } catch {
      return undefined;
    }
  }

  /** The artifact of a manifest digest, if every blob of it is here and intact. */
  async get(manifestDigest: string): Promise<Artifact | undefined> {
    const stored = await this.#manifest(manifestDigest);
    if (!stored) return undefined;
    const { bytes: manifestBytes, manifest } = stored;
    const [layer, ...files] = manifest.layers;
    if (!layer) return undefined;
    try {
      const blob = async (descriptor: Descriptor) => ({
        descriptor,
        bytes: await this.#store.readBlob(descriptor.digest),
      });
      const read: Artifact["files"] = [];
      // One after another: a function may ship a thousand files.
      for (const file of files) read.push(await blob(file));
      return {
        manifest: {
          descriptor: { mediaType: MEDIA_TYPES.manifest, digest: manifestDigest, size: manifestBytes.byteLength },
          bytes: manifestBytes,
        },
        config: await blob(manifest.config),
        layer: await blob(layer),
        files: read,
      };
    } catch {
      return undefined;
    }
  }

  /**
   * The digests of a stored artifact's config and layers, read from its
   * manifest alone (and kept: a manifest never changes); undefined when the
   * manifest cannot be read.
   */
  async blobDigests(manifestDigest: string): Promise<string[] | undefined> {
    let digests = this.#digests.get(manifestDigest);
    if (!digests) {
      const manifest = (await this.#manifest(manifestDigest))?.manifest;
      if (!manifest) return undefined;
      digests = [manifest.config.digest, ...manifest.layers.map((layer) => layer.digest)];
      this.#digests.set(manifestDigest, digests);
      if (this.#digests.size > KEPT_DIGEST_LISTS) this.#digests.delete(this.#digests.keys().next().value as string);
    }
    return digests;
  }

  /** A stored artifact's manifest bytes; undefined if it is not here. */
  async manifestBytes(manifestDigest: string): Promise<Buffer | undefined> {
    return (await this.#manifest(manifestDigest))?.bytes;
  }

  /** One blob (the config or a layer) of a stored artifact, read alone; undefined if it has none such. */
  async blob(manifestDigest: string, digest: string): Promise<Buffer | undefined> {
    if (!(await this.blobDigests(manifestDigest))?.includes(digest)) return undefined;
    return this.#store.readBlob(digest).catch(() => undefined);
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
