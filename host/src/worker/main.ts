/**
 * A worker thread of the pool (pool/worker-pool.ts): runs many invocations
 * at once, each on its own instance. While one waits (a timer, an outbound
 * request: the guest's stack is suspended, capabilities/io.ts) the others
 * run; CPU-bound work runs one at a time, bounded by its fuel. Everything
 * comes and goes on the thread's own port, in order (protocol.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import { holdSpares, refillSpares } from "../runtime/engine.ts";
import { holdPreloads, queuePreload, resumePreloads, stopPreloads } from "../runtime/image-cache.ts";
import type { InvokeResult } from "../runtime/types.ts";
import { Invocation } from "./invocation.ts";
import { KeptImages } from "./kept-images.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { WarmInstances } from "./warm-instances.ts";

if (!parentPort) throw new Error("worker/main.ts runs as a worker thread of the pool");
const port = parentPort;

const post = (message: FromWorker) => port.postMessage(message);

/** Invocations begun, shared with the pool: those past it are safe to run elsewhere if this thread is lost. */
const began = (workerData as { began: Int32Array }).began;

const warm = new WarmInstances((fn, count) => post({ type: "warm", fn, warm: count }));
const images = new KeptImages();
const running = new Map<number, Invocation>();

/** Scale to zero: idle instances unused for their function's idle timeout are dropped. */
setInterval(() => warm.sweep(), 1000).unref();

/**
 * Invocations waiting to start, each in a turn of the event loop of its
 * own. A port delivers every message that has arrived in one go, and an
 * invocation runs until its guest first waits (a new instance, then the
 * request up to its first fetch): started all in that go, a burst of N
 * would make N instances before the loop could send the first of their
 * requests upstream, or answer anything. One per turn, what the earlier
 * ones started goes out between them.
 */
const waiting: Array<() => void> = [];

function turn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (waiting.length === 1) setImmediate(startNext);
  });
}

function startNext(): void {
  waiting.shift()?.();
  if (waiting.length > 0) setImmediate(startNext);
}

/** The answer to a task whose image this worker does not hold. */
const NO_IMAGE: InvokeResult = {
  ok: false,
  error: { code: "JOULE_ERR_HOST_INTERNAL", message: "the worker does not hold the function's image" },
  stats: { coldStart: false, prepared: false, fuel: 0, durationUs: 0, memoryBytes: 0, threadId: 0 },
  logs: [],
  droppedLogs: 0,
  denials: [],
};

async function invoke(id: number, task: Extract<ToWorker, { type: "invoke" }>["task"]): Promise<void> {
  // Images are taken in the order messages come (kept-images.ts); a task without its image
  // cannot happen while both sides keep that order, a host bug if it does.
  const image = images.imageFor(task.imageId ?? 0, task.image);
  if (image) task.image = image;
  const invocation =
    image &&
    new Invocation(task, warm, {
      head: (status, headers) => post({ type: "head", id, status, headers }),
      chunk: (bytes) =>
        port.postMessage({ type: "chunk", id, bytes } satisfies FromWorker, [bytes.buffer as ArrayBuffer]),
    });
  if (invocation) {
    // Known at once, so that its body, credit and cancel messages find it while it waits its turn.
    running.set(id, invocation);
    if (running.size === 1) {
      // Making a spare or reading an image blocks the thread: not while invocations are in flight.
      holdSpares();
      holdPreloads();
    }
  }
  await turn();
  // Begun, in the order posted: a lost worker's invocations past this count run elsewhere (pool/worker-pool.ts).
  Atomics.add(began, 0, 1);
  if (!invocation || !image) {
    post({ type: "done", id, warm: 0, result: NO_IMAGE });
    return;
  }
  try {
    const result = await invocation.run();
    post({ type: "done", id, result, warm: warm.count(image.name) });
  } finally {
    running.delete(id);
    if (running.size === 0) {
      resumePreloads();
      // Once the worker has been quiet a while: make the instance a cold start will want next.
      refillSpares();
    }
  }
}

port.on("message", (message: ToWorker) => {
  switch (message.type) {
    case "invoke":
      void invoke(message.id, message.task);
      return;
    case "cancel":
      running.get(message.id)?.cancel(message.reason);
      return;
    case "body":
      running.get(message.id)?.body.push(message.bytes);
      return;
    case "body-end":
      running.get(message.id)?.body.end(message.error);
      return;
    case "credit":
      running.get(message.id)?.body.credit(message.bytes);
      return;
    case "preload":
      queuePreload(message.paths, message.paged);
      return;
    case "retire":
      images.forget(message.imageId);
      return;
    case "stop":
      stopPreloads();
      post({ type: "stopped" });
      return;
  }
});

post({ type: "ready" });
