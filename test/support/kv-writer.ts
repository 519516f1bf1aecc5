/**
 * A worker thread that writes through the kv capability as a guest's calls
 * would (test/unit/kv-concurrency.test.ts): it waits at a barrier so that
 * every thread opens kv.db and writes at the same moment, then reports the
 * calls that failed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { kvImports } from "../../host/src/capabilities/kv.ts";

const { path, worker, puts, barrier } = workerData as {
  path: string;
  worker: number;
  puts: number;
  barrier: Int32Array;
};
const kv = kvImports({ stores: ["s"], path }, [])["joule:function/kv"];
const encode = (text: string) => new TextEncoder().encode(text);

Atomics.add(barrier, 0, 1);
Atomics.notify(barrier, 0);
while (Atomics.load(barrier, 0) < Atomics.load(barrier, 1)) Atomics.wait(barrier, 0, Atomics.load(barrier, 0), 10);

const failures: string[] = [];
for (let i = 0; i < puts; i++) {
  try {
    kv.set("s", `w${worker}-${i % 100}`, encode(`${i}`), undefined);
    // One key every thread writes, and reads between writes, as guests do.
    kv.set("s", "shared", encode(`${worker}:${i}`), i % 10 === 0 ? 60_000n : undefined);
    if (i % 5 === 0) kv.get("s", `w${worker}-${i % 100}`);
  } catch (error) {
    const e = error as { tag?: string; val?: string; message?: string };
    failures.push(e.tag ? `${e.tag}: ${e.val}` : String(e.message));
  }
}
parentPort?.postMessage({ failures });
