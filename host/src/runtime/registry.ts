/**
 * The functions this host serves, in memory, backed by the store. Deploy
 * turns a component into something workers can instantiate: validate the
 * bytes, transpile with jco (in a helper thread), check the imports against
 * what the host grants, compile every core module once (identical modules,
 * such as the engine parts JS guests share, compile once per process), and
 * only then store the record and swap the function in.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { byPath, checkShippedFiles, type ShippedFile } from "../capabilities/files-bundle.ts";
import { GRANTABLE_INTERFACES, GRANTED_INTERFACES, interfaceName } from "../capabilities/index.ts";
import { KvGrants } from "../capabilities/kv-grants.ts";
import { outboundLimits } from "../capabilities/outbound-http.ts";
import { type SecretStore, secretName } from "../capabilities/secrets.ts";
import { JouleError } from "../errors.ts";
import { type FunctionSettings, functionSettings } from "../manifest.ts";
import { type Artifact, packageFunction } from "../oci/artifact.ts";
import { ArtifactStore } from "../store/artifact-store.ts";
import {
  type DerivedMeta,
  type FunctionRecord,
  type FunctionStore,
  SNAPSHOT_DERIVATION,
  sha256,
} from "../store/function-store.ts";
import { sanitize } from "./response.ts";
import { type CapturedSnapshot, initEnv } from "./snapshot.ts";
import type { TranspileResult } from "./transpile-worker.ts";
import type { FunctionImage } from "./types.ts";

/** Any version of the function world (0.1 and 0.2 are both served). */
const HANDLER_INTERFACE = "joule:function/handler@0.";
const LIFECYCLE_INTERFACE = "joule:function/lifecycle@0.";
const TRANSPILE_TIMEOUT_MS = 120_000;
const TRANSPILE_HEAP_MB = 2048;
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const CORE_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export interface LiveFunction {
  record: FunctionRecord;
  image: FunctionImage;
}

export interface DeployInput extends FunctionSettings {
  name: string;
  component: Uint8Array;
  /** The files of capabilities.files, already read (files-bundle.ts). */
  files?: ShippedFile[];
  /**
   * The OCI artifact the component came in (deploy by reference), already
   * verified; without one the host packages the component itself, so every
   * function is stored as the artifact it would push.
   */
  artifact?: { artifact: Artifact; ref: string } | undefined;
  /** The principal deploying it: who pays for anonymous calls to it (recorded as `owner`). */
  owner?: string | undefined;
  /** The functions the deploying key is limited to, if it is (kv-grants.ts). */
  limitedTo?: ReadonlySet<string> | undefined;
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

export function checkComponentBytes(bytes: Uint8Array): void {
  if (startsWith(bytes, COMPONENT_PREAMBLE)) return;
  if (startsWith(bytes, CORE_PREAMBLE)) {
    throw new JouleError(
      "JOULE_ERR_DEPLOY_NOT_A_COMPONENT",
      "this is a core WebAssembly module, not a component: build the function with `joule build`",
    );
  }
  throw new JouleError(
    "JOULE_ERR_DEPLOY_NOT_A_COMPONENT",
    `the upload (${bytes.byteLength} bytes) does not start with the WebAssembly component header: build the function with \`joule build\``,
  );
}

/** What makes two deploys the same: component, env and limits, independent of key order. */
function contentKey(
  digest: string,
  input: Pick<DeployInput, "env" | "limits" | "scaling" | "isolation" | "snapshot" | "public" | "capabilities">,
  files: ReadonlyArray<{ path: string; digest: string }>,
  artifact: string | undefined,
): string {
  const sorted = (o: object) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    digest,
    artifact ?? null,
    sorted(input.env),
    sorted(input.limits),
    sorted(input.scaling),
    input.isolation,
    input.snapshot,
    input.public,
    [...input.capabilities.kv].sort(),
    [...input.capabilities.outboundHttp].sort(),
    sorted(input.capabilities.files),
    files.map((file) => [file.path, file.digest]),
  ]);
}

/**
 * Refuses a component that imports a capability interface its function was
 * not granted, naming every missing grant. (Components built by `joule
 * build` import only what their manifest declares, so a narrowed deploy
 * shows here.)
 */
export function checkGrants(imports: readonly string[], capabilities: FunctionSettings["capabilities"]): void {
  const missing: string[] = [];
  for (const specifier of imports) {
    const iface = interfaceName(specifier);
    const grant = GRANTED_INTERFACES[iface as keyof typeof GRANTED_INTERFACES];
    if (!grant) continue;
    const value = capabilities[grant];
    const empty = Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
    if (empty && !missing.some((m) => m.startsWith(`capabilities.${grant} `)))
      missing.push(`capabilities.${grant} (the component imports ${iface})`);
  }
  if (missing.length > 0) {
    missing.sort();
    throw new JouleError(
      "JOULE_ERR_CAPABILITY_MISSING",
      `the component uses capabilities this deploy does not grant: ${missing.join("; ")}`,
      { missing },
    );
  }
}

/** Runs a function's init in a new instance and captures it (pool/snapshot-task.ts). */
export type Snapshotter = (live: LiveFunction) => Promise<CapturedSnapshot | undefined>;

export class FunctionRegistry {
  readonly #store: FunctionStore;
  readonly #artifacts: ArtifactStore;
  readonly #live = new Map<string, LiveFunction>();
  /** Deploys and deletes of one name run one after another. */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #compiled = new Map<string, Promise<WebAssembly.Module>>();
  #transpiler: Piscina | undefined;
  #snapshotter: Snapshotter | undefined;
  #retired: ((image: FunctionImage) => void) | undefined;

  readonly #defaultMemoryMb: number;
  readonly #secrets: SecretStore | undefined;
  readonly #kvPath: string;
  #kvGrants: KvGrants | undefined;
  readonly #dnsServers: readonly string[];

  /**
   * `defaultMemoryMb`: the memory limit of functions whose limits set none.
   * `secrets`: where `secret://` references in env are checked at deploy (and read by workers).
   */
  constructor(
    store: FunctionStore,
    options: { defaultMemoryMb: number; secrets?: SecretStore | undefined; dnsServers?: readonly string[] },
  ) {
    this.#store = store;
    this.#dnsServers = options.dnsServers ?? [];
    this.#artifacts = new ArtifactStore(store);
    this.#defaultMemoryMb = options.defaultMemoryMb;
    this.#secrets = options.secrets;
    this.#kvPath = join(store.root, "kv.db");
  }

  /** How deploys take snapshots; without one, init runs in every new instance. */
  useSnapshotter(snapshotter: Snapshotter): void {
    this.#snapshotter = snapshotter;
  }

  /** Told of every live image a deploy replaces or a removal drops: no request will use it again. */
  onRetired(listener: (image: FunctionImage) => void): void {
    this.#retired = listener;
  }

  /** Loads every stored function; returns the names that could not be loaded, with why. */
  async load(): Promise<Array<{ name: string; problem: string }>> {
    await this.#artifacts.open();
    const { records, invalid } = await this.#store.listRecords();
    const failed = invalid.map(({ file, problem }) => ({ name: file, problem }));
    // Reclaim what deleted and replaced versions left, unless a record could not be read
    // (it may reference something): nothing deploys yet, so nothing races this.
    if (invalid.length === 0) {
      const referenced = new Set(
        records.flatMap((r) => [
          r.component.digest,
          ...r.files.map((file) => file.digest),
          ...Object.values(r.snapshotTaken?.memories ?? {}).map((m) => m.digest),
        ]),
      );
      let complete = true;
      for (const record of records) {
        if (!record.artifact) continue;
        referenced.add(record.artifact.digest);
        // Every layer: a deploy that narrowed capabilities.files keeps the artifact whole.
        const digests = await this.#artifacts.blobDigests(record.artifact.digest);
        for (const digest of digests ?? []) referenced.add(digest);
        // An artifact that cannot be read now may only be unreadable for now: reclaim nothing.
        if (!digests) complete = false;
      }
      if (complete) await this.#store.collectGarbage(referenced);
    }
    await Promise.all(
      records.map(async (record) => {
        try {
          const meta = await this.#derive(record.component.digest, () => this.#store.readBlob(record.component.digest));
          this.#live.set(record.name, { record, image: await this.#image(record, meta) });
        } catch (error) {
          failed.push({ name: record.name, problem: (error as Error).message });
        }
      }),
    );
    // Data dirs from before grants were recorded: every stored function's stores are its own.
    const granted = records.filter((record) => record.capabilities.kv.length > 0);
    for (const record of granted) this.#grants().record(record.name, record.capabilities.kv);
    await this.#artifacts.writeIndex(this.list());
    return failed;
  }

  /** The stored artifact of a manifest digest, verified; undefined if this host does not have it. */
  artifact(digest: string): Promise<Artifact | undefined> {
    return this.#artifacts.get(digest);
  }

  /** A stored artifact's manifest, read alone. */
  artifactManifest(digest: string): Promise<Buffer | undefined> {
    return this.#artifacts.manifestBytes(digest);
  }

  /** One blob of a stored artifact (its config or a layer), read alone (ArtifactStore.blob). */
  artifactBlob(manifestDigest: string, digest: string): Promise<Buffer | undefined> {
    return this.#artifacts.blob(manifestDigest, digest);
  }

  get(name: string): LiveFunction | undefined {
    return this.#live.get(name);
  }

  list(): FunctionRecord[] {
    return [...this.#live.values()].map((f) => f.record).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Deploys a function version. Deploying the version that is already live
   * (same component, env and limits) changes nothing: `changed` is false.
   */
  deploy(input: DeployInput): Promise<{ record: FunctionRecord; changed: boolean }> {
    return this.#serially(input.name, () => this.#deploy(input));
  }

  #serially<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.#locks.set(name, settled);
    void settled.then(() => {
      if (this.#locks.get(name) === settled) this.#locks.delete(name);
    });
    return next;
  }

  async #deploy(input: DeployInput): Promise<{ record: FunctionRecord; changed: boolean }> {
    checkComponentBytes(input.component);
    const digest = sha256(input.component);
    const shipped = [...(input.files ?? [])].sort(byPath);
    checkShippedFiles(shipped, Object.keys(input.capabilities.files));
    const bundle = shipped.map((file) => ({
      path: file.path,
      digest: sha256(file.bytes),
      size: file.bytes.byteLength,
    }));
    const given = input.artifact?.artifact;
    if (given && given.layer.descriptor.digest !== digest) {
      throw new JouleError("JOULE_ERR_OCI_DIGEST_MISMATCH", "the component is not the artifact's layer");
    }
    const key = contentKey(digest, input, bundle, given?.manifest.descriptor.digest);
    const live = this.#live.get(input.name);
    const liveKey =
      live &&
      contentKey(live.record.component.digest, live.record, live.record.files, given && live.record.artifact?.digest);
    if (live && liveKey === key) {
      return { record: live.record, changed: false };
    }
    const unset = Object.entries(input.env).filter(([, value]) => {
      const name = secretName(value);
      return name !== undefined && this.#secrets?.allows(name, input.name) !== true;
    });
    if (unset.length > 0) {
      const problems = unset.map(
        ([key, value]) =>
          `env.${key}: ${value} is not set for ${input.name} (joule secrets set ${secretName(value)} --functions ${input.name})`,
      );
      throw new JouleError(
        "JOULE_ERR_MANIFEST_INVALID",
        `env references secrets that are not set: ${problems.join("; ")}`,
        {
          problems,
        },
      );
    }
    if (input.limitedTo) {
      const shared = this.#grants().others(input.capabilities.kv, input.limitedTo);
      if (shared.length > 0) {
        const stores = [...new Set(shared.map((row) => row.store))].sort();
        throw new JouleError(
          "JOULE_ERR_PERMISSION_DENIED",
          `capabilities.kv: ${stores.map((s) => `"${s}"`).join(", ")} ${stores.length === 1 ? "is a store" : "are stores"} of functions this key does not reach; name a store of your own`,
          { stores },
        );
      }
    }
    const meta = await this.#derive(digest, async () => input.component);
    checkGrants(meta.imports, input.capabilities);
    const limitMb = input.limits.memoryMb ?? this.#defaultMemoryMb;
    if (meta.memoryMinPages > limitMb * 16) {
      const needed = Math.ceil(meta.memoryMinPages / 16);
      throw new JouleError(
        "JOULE_ERR_MANIFEST_INVALID",
        `the component starts with ${needed} MiB of memory, over its limit of ${limitMb} MiB: raise limits.memoryMb`,
        { problems: [`limits.memoryMb: at least ${needed}`] },
      );
    }
    const settings = functionSettings(input);
    const artifact = given ?? (await packageFunction(input.component, { name: input.name, ...settings }, shipped));
    const deployedAt = new Date().toISOString();
    const record: FunctionRecord = {
      name: input.name,
      // Unique per deploy: workers key warm instances by it, so a function
      // deleted and deployed again never meets its old instances.
      version: sha256(`${key}${deployedAt}${randomUUID()}`).slice(7, 19),
      component: { digest, size: input.component.byteLength },
      artifact: {
        digest: artifact.manifest.descriptor.digest,
        size: artifact.manifest.descriptor.size,
        ...(input.artifact ? { ref: input.artifact.ref } : {}),
      },
      ...settings,
      imports: meta.imports,
      files: bundle,
      deployedAt,
      ...(input.owner === undefined ? {} : { owner: input.owner }),
    };
    const hasInit = meta.exports.some((name) => name.startsWith(LIFECYCLE_INTERFACE));
    if (record.snapshot && !meta.snapshots && hasInit) {
      throw new JouleError(
        "JOULE_ERR_DEPLOY_SNAPSHOT",
        'the component has an init, but its state after init cannot be snapshotted (a core module has a start function, writes data at instantiation, or keeps mutable globals the host cannot read): deploy with "snapshot": false to run init in every new instance',
      );
    }
    // Shipped files first: init may read them.
    for (const file of shipped) await this.#store.putBlob(file.bytes);
    let image = await this.#image(record, meta);
    if (record.snapshot && meta.snapshots && hasInit && this.#snapshotter) {
      // init sees no secrets: the snapshot is written to disk (runtime/snapshot.ts).
      const { secrets: _, ...plain } = image;
      const captured = await this.#snapshotter({
        record,
        image: { ...plain, env: initEnv(image.env), initOnCreate: false },
      });
      if (captured) {
        record.snapshotTaken = await this.#storeSnapshot(captured);
        image = await this.#image(record, meta);
      }
    }
    // Recorded first: a grant recorded for a deploy that then fails only keeps the store out of reach.
    this.#grants().record(record.name, record.capabilities.kv);
    // Order matters: blobs, then record, then the in-memory swap. Until the
    // record is renamed into place a crash leaves the previous version.
    await this.#artifacts.put(artifact);
    await this.#store.putRecord(record);
    const replaced = this.#live.get(record.name)?.image;
    this.#live.set(record.name, { record, image });
    if (replaced) this.#retired?.(replaced);
    await this.#artifacts.writeIndex(this.list());
    return { record, changed: true };
  }

  async #storeSnapshot(captured: CapturedSnapshot): Promise<NonNullable<FunctionRecord["snapshotTaken"]>> {
    const memories: NonNullable<FunctionRecord["snapshotTaken"]>["memories"] = {};
    for (const [file, { pages, image }] of Object.entries(captured.memories)) {
      memories[file] = { digest: await this.#store.putImage(image), pages };
    }
    const globals: Record<string, Record<string, number | string>> = {};
    for (const [file, values] of Object.entries(captured.globals)) {
      globals[file] = Object.fromEntries(
        Object.entries(values).map(([name, value]) => [name, typeof value === "bigint" ? value.toString() : value]),
      );
    }
    return { memories, globals, initFuel: captured.fuel, derivation: SNAPSHOT_DERIVATION };
  }

  remove(name: string): Promise<boolean> {
    return this.#serially(name, async () => {
      const gone = this.#live.get(name)?.image;
      const existed = this.#live.delete(name);
      if (gone) this.#retired?.(gone);
      const removed = (await this.#store.deleteRecord(name)) || existed;
      await this.#artifacts.writeIndex(this.list());
      return removed;
    });
  }

  async close(): Promise<void> {
    await this.#transpiler?.destroy();
    this.#transpiler = undefined;
    this.#kvGrants?.close();
    this.#kvGrants = undefined;
  }

  /** Who was ever granted each kv store, opened on first use (kv-grants.ts). */
  #grants(): KvGrants {
    this.#kvGrants ??= new KvGrants(this.#kvPath);
    return this.#kvGrants;
  }

  /** The derived files of a component: from the cache, or transpiled now and cached. */
  async #derive(digest: string, bytes: () => Promise<Uint8Array>): Promise<DerivedMeta> {
    const cached = await this.#store.readDerived(digest);
    if (cached) return cached;
    const component = await bytes();
    // Transpiling runs jco on uploaded bytes: bounded in time and heap, so a pathological
    // component fails its own deploy instead of stalling every later one.
    this.#transpiler ??= new Piscina({
      filename: new URL("./transpile-worker.ts", import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 30_000,
      resourceLimits: { maxOldGenerationSizeMb: TRANSPILE_HEAP_MB },
    });
    let result: TranspileResult;
    try {
      result = await this.#transpiler.run(component, { signal: AbortSignal.timeout(TRANSPILE_TIMEOUT_MS) });
    } catch (error) {
      const reason =
        (error as Error).name === "AbortError" || (error as Error).name === "TimeoutError"
          ? `transpiling took longer than ${TRANSPILE_TIMEOUT_MS / 1000} s`
          : `transpiling failed: ${sanitize((error as Error).message).split("\n")[0]}`;
      throw new JouleError("JOULE_ERR_DEPLOY_INVALID_COMPONENT", `the component could not be prepared: ${reason}`);
    }
    if (!result.ok) throw JouleError.fromWire(result.error);
    const { files } = result;
    if (!files.exports.some((name) => name.startsWith(HANDLER_INTERFACE))) {
      throw new JouleError(
        "JOULE_ERR_DEPLOY_WORLD_MISMATCH",
        `the component must export ${HANDLER_INTERFACE}x (the world in sdk/wit/world.wit); it exports: ${files.exports.join(", ") || "nothing"}`,
        { exports: files.exports },
      );
    }
    const missing = files.imports.filter((name) => !GRANTABLE_INTERFACES.has(interfaceName(name)));
    if (missing.length > 0) {
      throw new JouleError(
        "JOULE_ERR_CAPABILITY_MISSING",
        `the component imports interfaces this host does not grant: ${missing.join(", ")}`,
        { missing },
      );
    }
    // Compile before caching: bytes that V8 refuses never reach the store.
    await Promise.all(Object.values(files.modules).map((m) => this.#compile(sha256(m), async () => m)));
    return this.#store.putDerived(digest, files);
  }

  #compile(digest: string, bytes: () => Promise<Uint8Array>): Promise<WebAssembly.Module> {
    let module = this.#compiled.get(digest);
    if (!module) {
      module = bytes().then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>));
      module.catch(() => this.#compiled.delete(digest));
      this.#compiled.set(digest, module);
    }
    return module.catch((error: unknown) => {
      const message = sanitize(error instanceof Error ? error.message : String(error)).split("\n")[0];
      throw new JouleError("JOULE_ERR_DEPLOY_INVALID_COMPONENT", `a core module does not compile: ${message}`);
    });
  }

  async #image(record: FunctionRecord, meta: DerivedMeta): Promise<FunctionImage> {
    const dir = this.#store.derivedDir(record.component.digest);
    const modules: Record<string, WebAssembly.Module> = {};
    for (const [file, digest] of Object.entries(meta.modules)) {
      modules[file] = await this.#compile(digest, () => readFile(this.#store.modulePath(digest)));
    }
    const images = Object.fromEntries(Object.entries(meta.images).map(([file, image]) => [file, join(dir, image)]));
    // A snapshot fits the modules it was taken with: after they change, init runs per instance
    // until the function is deployed again.
    const taken = record.snapshotTaken?.derivation === SNAPSHOT_DERIVATION ? record.snapshotTaken : undefined;
    for (const [file, { digest }] of Object.entries(taken?.memories ?? {}))
      images[file] = this.#store.recipePath(digest);
    return {
      name: record.name,
      version: record.version,
      glueUrl: pathToFileURL(join(dir, meta.glue)).href,
      initOnCreate: taken === undefined,
      ...(taken
        ? {
            snapshot: {
              pages: Object.fromEntries(Object.entries(taken.memories).map(([file, m]) => [file, m.pages])),
              globals: Object.fromEntries(
                Object.entries(taken.globals).map(([file, values]) => [
                  file,
                  Object.fromEntries(
                    Object.entries(values).map(([name, v]) => [name, typeof v === "string" ? BigInt(v) : v]),
                  ),
                ]),
              ),
            },
          }
        : {}),
      ...(meta.engine ? { engine: meta.engine } : {}),
      modules,
      meters: meta.meters,
      images,
      env: record.env,
      kv: record.capabilities.kv.length > 0 ? { stores: record.capabilities.kv, path: this.#kvPath } : { stores: [] },
      outboundHttp: {
        origins: record.capabilities.outboundHttp,
        limits: outboundLimits(record.limits.outbound),
        ...(this.#dnsServers.length > 0 ? { dnsServers: this.#dnsServers } : {}),
      },
      files: {
        mounts: Object.keys(record.capabilities.files),
        entries: Object.fromEntries(
          record.files.map((file) => [file.path, { blob: this.#store.blobPath(file.digest), size: file.size }]),
        ),
      },
      ...(this.#secrets && Object.values(record.env).some((v) => secretName(v) !== undefined)
        ? { secrets: this.#secrets.files }
        : {}),
    };
  }
}
