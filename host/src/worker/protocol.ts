/**
 * What the main thread and one worker say to each other, over that worker's
 * own port (one ordered channel per worker). Order is what keeps the two
 * sides in agreement without asking: the images a worker holds are exactly
 * those the main thread sent it, less those it evicted or retired since, in
 * the order they were posted (pool/sent-images.ts, worker/kept-images.ts).
 */
import type { InvokeResult, InvokeTask } from "../runtime/types.ts";

/** Main thread → worker. */
export type ToWorker =
  /** Start an invocation; its answer is a `done` with the same id. `image` travels only to a worker that lacks it. */
  | { type: "invoke"; id: number; task: InvokeTask }
  /** End an invocation early: its waits are rejected and its instance dropped (deadline, client gone). */
  | { type: "cancel"; id: number; reason: "timeout" | "disconnected" }
  /** More of a streamed request body, as it arrives; then its end, or why it will not come. */
  | { type: "body"; id: number; bytes: Uint8Array }
  | { type: "body-end"; id: number; error?: string }
  /** The client took this many more bytes of a streamed response: the guest may write that much more. */
  | { type: "credit"; id: number; bytes: number }
  /** Read (and page) these memory images while idle, before a request needs them (runtime/image-cache.ts). */
  | { type: "preload"; paths: string[]; paged: boolean }
  /** No task will name this image again: drop it. */
  | { type: "retire"; imageId: number }
  /** The pool is closing: stop reading images, then say `stopped`. */
  | { type: "stop" };

/** Worker → main thread. */
export type FromWorker =
  /** The worker's thread is up and takes tasks. */
  | { type: "ready" }
  /** A streamed response starts: its status and headers (body.respond in sdk/wit/world.wit). */
  | { type: "head"; id: number; status: number; headers: Array<[string, string]> }
  /** Bytes of a streamed response, in order; the main thread answers with `credit` once they are taken. */
  | { type: "chunk"; id: number; bytes: Uint8Array }
  /** An invocation ended; `warm` is how many instances of its function the worker now holds. */
  | { type: "done"; id: number; result: InvokeResult; warm: number }
  /** The worker dropped idle instances of a function (scale to zero, eviction): it now holds `warm`. */
  | { type: "warm"; fn: string; warm: number }
  | { type: "stopped" };
