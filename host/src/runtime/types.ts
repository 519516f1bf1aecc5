/**
 * Shapes shared by the main thread and the workers. Everything here crosses a
 * thread boundary by structured clone, so it is plain data (plus compiled
 * `WebAssembly.Module`s, which are shared, not copied).
 */
import type { FilesGrant } from "../capabilities/files.ts";
import type { Denial, KvGrant } from "../capabilities/kv.ts";
import type { LogLine } from "../capabilities/log-sink.ts";
import type { OutboundHttpGrant } from "../capabilities/outbound-http.ts";
import type { SecretFiles } from "../capabilities/secrets.ts";
import type { WireError } from "../errors.ts";
import type { MeterExports } from "../fuel/instrument.ts";
import type { Isolation } from "../manifest.ts";
import type { CapturedSnapshot } from "./snapshot.ts";

/** A deployed function as a worker needs it to make instances. */
export interface FunctionImage {
  name: string;
  /** Content digest of the deployed component plus its config; a new deploy is a new version. */
  version: string;
  /** file: URL of the jco glue module (instantiation mode). */
  glueUrl: string;
  /** Components with the same engine can take instances made ahead of need (runtime/engine.ts). */
  engine?: string;
  /**
   * Set when `images` are a snapshot taken after init (runtime/snapshot.ts):
   * per core module, the memory size to restore, in pages, and the values of
   * its exported mutable globals.
   */
  snapshot?: {
    pages: Record<string, number>;
    globals: Record<string, Record<string, number | bigint>>;
  };
  /** Run the guest's init() in every new instance: there is no snapshot of it. */
  initOnCreate: boolean;
  /** Core modules by the names the glue asks for. */
  modules: Record<string, WebAssembly.Module>;
  /** Memory images (file paths) of modules whose data was split off at deploy. */
  images: Record<string, string>;
  /** Names of the metering globals each core module exports. */
  meters: Record<string, MeterExports>;
  /** May hold `secret://<name>` references, resolved from `secrets` when an instance is made. */
  env: Record<string, string>;
  /** The secret store's files, when `env` references secrets: the worker reads the key itself. */
  secrets?: SecretFiles;
  /** The key-value stores the function was granted. */
  kv: KvGrant;
  /** The origins the function may send HTTP requests to. */
  outboundHttp: OutboundHttpGrant;
  /** The files shipped with the function. */
  files: FilesGrant;
}

export interface GuestRequest {
  method: string;
  /** As the client called it, mount included. */
  url: string;
  /** The path prefix the request was routed by (`/fn/<name>`). */
  mount: string;
  headers: Array<[string, string]>;
  /** The body, or its first bytes when `bodyStreamed` (the rest is forwarded as it arrives). */
  body: Uint8Array;
  bodyStreamed: boolean;
}

export interface GuestResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

export interface InvokeTask {
  image: FunctionImage;
  /** The image's id (pool/image-refs.ts); `image` itself travels only to a worker that lacks it. */
  imageId?: number;
  request: GuestRequest;
  requestId: string;
  /** Wall-clock limit, from when the worker starts the invocation (a cold start's images read). */
  timeoutMs: number;
  /** Fuel this invocation may use. */
  fuelLimit: number;
  /** Linear memory an instance may grow to, in 64 KiB pages. */
  memoryLimitPages: number;
  maxResponseBytes: number;
  maxLogBytes: number;
  /** "per-request": the instance is never reused. */
  isolation: Isolation;
  /** Drop idle instances after this long unused, all but `keepWarm` of them. */
  idleTimeoutMs: number;
  /** Idle instances a worker keeps whatever the idle timeout (scaling.minInstances). */
  keepWarm: number;
  /** Only make (or keep) a warm instance; `request` is not run. */
  warmOnly?: boolean;
  /** Deploy: run init() in a new instance and capture it (runtime/snapshot.ts); `request` is not run. */
  snapshot?: boolean;
}

/** Posted by workers on INSTANCES_CHANNEL whenever their count of warm instances of a function changes. */
export interface InstanceCount {
  threadId: number;
  fn: string;
  count: number;
}

export const INSTANCES_CHANNEL = "joule:instances";

export interface InvokeStats {
  coldStart: boolean;
  /** A cold start that bound an instance made ahead of need (runtime/engine.ts) instead of instantiating. */
  prepared: boolean;
  /** Time inside the worker: instantiation (if cold) plus the handler. */
  durationUs: number;
  /** Fuel used: by the handler, plus instantiation on a cold start. */
  fuel: number;
  /** Linear memory of the instance after the call, in bytes. */
  memoryBytes: number;
  threadId: number;
}

export type InvokeResult =
  | {
      ok: true;
      response: GuestResponse;
      stats: InvokeStats;
      logs: LogLine[];
      droppedLogs: number;
      denials: Denial[];
      /** What a snapshot task captured; undefined when the guest has no init. */
      snapshot?: CapturedSnapshot | undefined;
    }
  | { ok: false; error: WireError; stats: InvokeStats; logs: LogLine[]; droppedLogs: number; denials: Denial[] };
