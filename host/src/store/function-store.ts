/**
 * The embedded store: one data directory, everything content-addressed.
 *
 *   blobs/sha256/<hex>        blobs up to 1 MiB (manifests, configs, small components)
 *   recipes/sha256/<hex>      larger blobs (JS components): the recipe of their chunks
 *   chunks/sha256/<hex>       chunks of large blobs and memory images, zstd, by digest:
 *                             the engine all JS functions share is stored once
 *   cache/v<N>/<hex>/         what deploy derived from component <hex>: memory images
 *                             (chunk recipes), `meta.json`; N is DERIVATION_VERSION,
 *                             other versions are dropped
 *   cache/v<N>/modules/<hex>.wasm  metered core modules by digest, shared by every
 *                             component that has the same one (the JS engine)
 *   cache/v<N>/glue/<hex>.mjs the jco glue by digest (the same for every JS function)
 *   functions/<name>.json     the deployed version of each function
 *   oci-layout, index.json    with blobs/, an OCI image layout: each function's
 *                             artifact (manifest, Wasm config, component layer),
 *                             tagged with the function's name (store/artifact-store.ts)
 *   tmp/                      staging; emptied at start
 *
 * A function record is written last and by rename, so a deploy that dies
 * half way leaves the previous version in place and nothing half-written
 * visible. Blobs and cache entries are immutable once renamed in.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { MeterExports } from "../fuel/instrument.ts";
import {
  capabilitiesSchema,
  checkFunctionName,
  DEFAULT_SCALING,
  envSchema,
  functionNameSchema,
  isolationSchema,
  limitsSchema,
  scalingSchema,
} from "../manifest.ts";
import { makeDir, renameDirAtomic, writeAtomic } from "./atomic.ts";
import { ChunkStore, recipeChunks } from "./chunk-store.ts";

/** Blobs larger than this are stored as chunks and a recipe (store/chunk-store.ts). */
const CHUNKED_BLOB_BYTES = 1024 * 1024;

export const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function hex(digest: string): string {
  if (!DIGEST.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return digest.slice("sha256:".length);
}

export const functionRecordSchema = z
  .object({
    name: functionNameSchema,
    version: z.string(),
    component: z.object({ digest: z.string().regex(DIGEST), size: z.number().int().nonnegative() }).strict(),
    /** The OCI artifact this version is (manifest digest), and the reference it was deployed from, if any. */
    artifact: z
      .object({
        digest: z.string().regex(DIGEST),
        size: z.number().int().nonnegative(),
        ref: z.string().optional(),
      })
      .strict()
      .optional(),
    env: envSchema,
    limits: limitsSchema,
    scaling: scalingSchema.default(DEFAULT_SCALING),
    isolation: isolationSchema.default("reuse"),
    snapshot: z.boolean().default(true),
    public: z.boolean().default(false),
    capabilities: capabilitiesSchema.prefault({}),
    imports: z.array(z.string()),
    /** The read-only files shipped with it (capabilities.files), each a blob by digest. */
    files: z
      .array(
        z.object({ path: z.string(), digest: z.string().regex(DIGEST), size: z.number().int().nonnegative() }).strict(),
      )
      .default([]),
    deployedAt: z.string(),
    /**
     * The principal that deployed this version (an API key's id, "operator",
     * or "host" for what the host deploys itself): anonymous calls of a
     * public function are charged to it. Absent in records made before owners.
     */
    owner: z.string().max(128).optional(),
    /**
     * The snapshot taken after init at deploy: per core module, its memory
     * image (a blob) and size in pages, and its globals (i64 values as
     * decimal strings). Absent: instances start from the component's own data.
     */
    snapshotTaken: z
      .object({
        memories: z.record(
          z.string(),
          z.object({ digest: z.string().regex(DIGEST), pages: z.number().int().nonnegative() }).strict(),
        ),
        globals: z.record(z.string(), z.record(z.string(), z.union([z.number(), z.string().regex(/^-?\d+$/)]))),
        initFuel: z.number().nonnegative(),
        /** The SNAPSHOT_DERIVATION of the modules it was taken with. */
        derivation: z.number().int(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type FunctionRecord = z.infer<typeof functionRecordSchema>;

/**
 * Bumped whenever deploy derives different files from the same component
 * (a jco upgrade, a glue rewrite): cache entries of another version are
 * derived again instead of being used. 11: metering shares one fuel counter
 * across a component's core modules (imports from `joule:fuel`), passes
 * fuel to direct calls in a register, and charges nothing for structure.
 */
export const DERIVATION_VERSION = 12;

/**
 * The version of the metered core modules a snapshot is taken with. It
 * moves with DERIVATION_VERSION only when those modules change: a change
 * of the glue alone (10: init runs under JSPI) keeps stored snapshots;
 * 11 changed the modules (their globals moved past the fuel imports);
 * 12 the glue (waiting suspends the guest; world 0.2.0), snapshots kept.
 */
export const SNAPSHOT_DERIVATION = 11;

/** What deploy derived from a component, recorded beside the files. */
export const derivedMetaSchema = z
  .object({
    derivation: z.literal(DERIVATION_VERSION),
    glue: z.string(),
    modules: z.record(z.string(), z.string().regex(DIGEST)),
    /** Per core module, the names of the globals metering exports (see host/src/fuel). */
    meters: z.record(
      z.string(),
      z
        .object({
          fuel: z.string(),
          memoryLimit: z.string(),
          memoryRefused: z.string(),
          memory: z.string().optional(),
          start: z.string().optional(),
          globals: z.array(z.string()).optional(),
          tables: z.array(z.string()).optional(),
        })
        .strict(),
    ),
    /** Per core module whose data was split off, the file holding its memory image. */
    images: z.record(z.string(), z.string()),
    /** The largest initial memory of the component's core modules, in 64 KiB pages. */
    memoryMinPages: z.number().int().nonnegative(),
    /** Seconds spent instrumenting, and bytes in, for the record. */
    instrumentMs: z.number().nonnegative(),
    imports: z.array(z.string()),
    exports: z.array(z.string()),
    /**
     * Digest of the glue and core modules together, when instances of them can
     * be made ahead of need (runtime/engine.ts): components with the same
     * engine (every JS guest of one SDK build) share made-ahead instances.
     */
    engine: z.string().regex(DIGEST).optional(),
    /** Whether deploy can snapshot an instance after init (runtime/snapshot.ts). */
    snapshots: z.boolean(),
  })
  .strict();

export type DerivedMeta = z.infer<typeof derivedMetaSchema>;

export interface DerivedFiles {
  glue: string;
  /** Core modules, already fuel-instrumented. */
  modules: Record<string, Uint8Array>;
  meters: Record<string, MeterExports>;
  /** Memory images of modules whose data was split off, encoded (runtime/memory-image.ts). */
  images: Record<string, Uint8Array>;
  memoryMinPages: number;
  instrumentMs: number;
  imports: string[];
  exports: string[];
  /** No module has a start function or writes data at instantiation: see DerivedMeta.engine. */
  preparable: boolean;
  /** Its state after init is all in memories and globals the host can read and restore: see DerivedMeta.snapshots. */
  snapshots: boolean;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

export class FunctionStore {
  readonly root: string;
  readonly #tmp: string;
  readonly #chunks: ChunkStore;

  constructor(root: string) {
    this.root = root;
    this.#tmp = join(root, "tmp");
    this.#chunks = new ChunkStore(root, this.#tmp);
  }

  async open(): Promise<void> {
    await rm(this.#tmp, { recursive: true, force: true });
    for (const dir of ["blobs/sha256", "recipes/sha256", "chunks/sha256", "cache", "functions", "tmp"]) {
      await mkdir(join(this.root, dir), { recursive: true });
    }
    // Files derived by another version of the host are derived again on demand.
    for (const entry of await readdir(join(this.root, "cache"))) {
      if (entry !== `v${DERIVATION_VERSION}`)
        await rm(join(this.root, "cache", entry), { recursive: true, force: true });
    }
  }

  blobPath(digest: string): string {
    return join(this.root, "blobs/sha256", hex(digest));
  }

  recipePath(digest: string): string {
    return join(this.root, "recipes/sha256", hex(digest));
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await exists(this.blobPath(digest))) || exists(this.recipePath(digest));
  }

  async putBlob(data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    if (await this.hasBlob(digest)) return digest;
    if (data.byteLength <= CHUNKED_BLOB_BYTES) {
      await writeAtomic(this.#tmp, this.blobPath(digest), data);
    } else {
      // Chunks first, recipe last: the blob exists once its recipe does.
      const { recipe } = await this.#chunks.put(data, dirname(this.recipePath(digest)), "wasm");
      await this.#chunks.writeRecipe(this.recipePath(digest), recipe);
    }
    return digest;
  }

  /**
   * Stores a memory image (a deploy-time snapshot) as chunks, most of which
   * it shares with other functions' images; a worker reads it back from
   * `recipePath(digest)` (runtime/instance.ts).
   */
  async putImage(data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    if (await exists(this.recipePath(digest))) return digest;
    const { recipe } = await this.#chunks.put(data, dirname(this.recipePath(digest)), "image");
    await this.#chunks.writeRecipe(this.recipePath(digest), recipe);
    return digest;
  }

  /** A stored blob, checked against its digest (a damaged file is never used). */
  async readBlob(digest: string): Promise<Buffer> {
    const bytes = await readFile(this.blobPath(digest)).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
      return this.#chunks.read(this.recipePath(digest));
    });
    if (sha256(bytes) !== digest) throw new Error(`stored blob ${digest} is damaged (its content has another digest)`);
    return bytes;
  }

  get tmpDir(): string {
    return this.#tmp;
  }

  /** A derived core module, by the digest of its bytes. */
  modulePath(digest: string): string {
    return join(this.root, "cache", `v${DERIVATION_VERSION}`, "modules", `${hex(digest)}.wasm`);
  }

  derivedDir(componentDigest: string): string {
    return join(this.root, "cache", `v${DERIVATION_VERSION}`, hex(componentDigest));
  }

  async readDerived(componentDigest: string): Promise<DerivedMeta | undefined> {
    const text = await readFile(join(this.derivedDir(componentDigest), "meta.json"), "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = derivedMetaSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  }

  /** Writes the derived files of a component as one directory, atomically, replacing an outdated one. */
  async putDerived(componentDigest: string, files: DerivedFiles): Promise<DerivedMeta> {
    const staging = join(this.#tmp, `derived-${hex(componentDigest)}-${process.hrtime.bigint()}`);
    try {
      return await this.#putDerived(componentDigest, files, staging);
    } catch (error) {
      // A full disk: what was staged goes, not at the next start.
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
  }

  async #putDerived(componentDigest: string, files: DerivedFiles, staging: string): Promise<DerivedMeta> {
    await makeDir(staging);
    const modules: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(files.modules)) {
      // Core modules are shared by digest: JS guests built from one engine have the same code module.
      modules[name] = sha256(bytes);
      const shared = this.modulePath(modules[name]);
      if (!(await stat(shared).catch(() => undefined))) await writeAtomic(this.#tmp, shared, bytes);
    }
    // The glue is the same for every JS function: shared by digest, beside the modules.
    const glue = `../glue/${hex(sha256(files.glue))}.mjs`;
    const gluePath = join(this.derivedDir(componentDigest), glue);
    if (!(await stat(gluePath).catch(() => undefined))) await writeAtomic(this.#tmp, gluePath, files.glue);
    // Memory images are stored as chunks: most of a heap image's chunks are shared with other functions'.
    const images: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(files.images)) {
      images[name] = `${name}.image`;
      const { recipe } = await this.#chunks.put(bytes, this.derivedDir(componentDigest), "image");
      await writeFile(join(staging, images[name]), JSON.stringify(recipe));
    }
    const meta: DerivedMeta = {
      derivation: DERIVATION_VERSION,
      glue,
      modules,
      meters: files.meters,
      images,
      memoryMinPages: files.memoryMinPages,
      instrumentMs: files.instrumentMs,
      imports: files.imports,
      exports: files.exports,
      snapshots: files.snapshots,
    };
    if (files.preparable) {
      const parts = Object.entries(modules).map(([name, digest]) => `${name}=${digest}`);
      meta.engine = sha256([sha256(files.glue), ...parts.sort()].join("\n"));
    }
    await writeFile(join(staging, "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
    await renameDirAtomic(staging, this.derivedDir(componentDigest));
    return meta;
  }

  /** The one place a function's name becomes a path; anything but a valid name is refused. */
  recordPath(name: string): string {
    return join(this.root, "functions", `${checkFunctionName(name)}.json`);
  }

  async putRecord(record: FunctionRecord): Promise<void> {
    await writeAtomic(this.#tmp, this.recordPath(record.name), `${JSON.stringify(record, null, 2)}\n`);
  }

  async deleteRecord(name: string): Promise<boolean> {
    const path = this.recordPath(name);
    const existed = await stat(path).then(
      () => true,
      () => false,
    );
    await rm(path, { force: true });
    return existed;
  }

  /**
   * Removes components, derived files and shared modules that no record
   * references any more (deleted or replaced versions). Only safe while
   * nothing deploys: the host runs it at start, before it serves.
   */
  async collectGarbage(referenced: ReadonlySet<string>): Promise<{ removed: number }> {
    let removed = 0;
    const remove = async (path: string) => {
      await rm(path, { recursive: true, force: true });
      removed++;
    };
    for (const dir of ["blobs/sha256", "recipes/sha256"]) {
      for (const file of await readdir(join(this.root, dir))) {
        if (!referenced.has(`sha256:${file}`)) await remove(join(this.root, dir, file));
      }
    }
    const derived = join(this.root, "cache", `v${DERIVATION_VERSION}`);
    const keepModules = new Set<string>();
    const keepGlue = new Set<string>();
    const recipes: string[] = [];
    for (const entry of await readdir(derived).catch(() => [] as string[])) {
      if (entry === "modules" || entry === "glue") continue;
      const meta = referenced.has(`sha256:${entry}`) ? await this.readDerived(`sha256:${entry}`) : undefined;
      if (!meta) {
        await remove(join(derived, entry));
        continue;
      }
      for (const module of Object.values(meta.modules)) keepModules.add(`${hex(module)}.wasm`);
      keepGlue.add(meta.glue.split("/").pop() as string);
      for (const image of Object.values(meta.images)) recipes.push(join(derived, entry, image));
    }
    for (const [dir, keep] of [
      ["modules", keepModules],
      ["glue", keepGlue],
    ] as const) {
      for (const file of await readdir(join(derived, dir)).catch(() => [] as string[])) {
        if (!keep.has(file)) await remove(join(derived, dir, file));
      }
    }
    for (const file of await readdir(join(this.root, "recipes/sha256")))
      recipes.push(join(this.root, "recipes/sha256", file));
    const keepChunks = new Set<string>();
    for (const recipe of recipes) {
      const chunks = await recipeChunks(recipe);
      // A recipe that cannot be read may still need its chunks: keep them all this time.
      if (!chunks) return { removed };
      for (const chunk of chunks) keepChunks.add(chunk);
    }
    for (const file of await readdir(this.#chunks.dir)) {
      if (!keepChunks.has(file)) await remove(join(this.#chunks.dir, file));
    }
    return { removed };
  }

  /** Every stored record; a record that fails validation is reported, not loaded. */
  async listRecords(): Promise<{ records: FunctionRecord[]; invalid: Array<{ file: string; problem: string }> }> {
    const records: FunctionRecord[] = [];
    const invalid: Array<{ file: string; problem: string }> = [];
    for (const file of (await readdir(join(this.root, "functions"))).sort()) {
      if (!file.endsWith(".json")) continue;
      try {
        records.push(
          functionRecordSchema.parse(JSON.parse(await readFile(join(this.root, "functions", file), "utf8"))),
        );
      } catch (error) {
        invalid.push({ file, problem: (error as Error).message });
      }
    }
    return { records, invalid };
  }
}
