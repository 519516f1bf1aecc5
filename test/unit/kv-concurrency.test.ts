/**
 * Several workers writing one kv.db at once wait for each other: none of
 * their calls fails. (One put in about a hundred failed with "database is
 * locked" when a worker opened kv.db while another wrote.)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { kvImports } from "../../host/src/capabilities/kv.ts";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("kv under concurrent writers", () => {
  it("loses no put when four threads write one store at the same moment", async () => {
    dir = await mkdtemp(join(tmpdir(), "joule-kv-"));
    const path = join(dir, "kv.db");
    const threads = 4;
    const puts = 1000;
    const barrier = new Int32Array(new SharedArrayBuffer(8));
    barrier[1] = threads;
    const results = await Promise.all(
      Array.from(
        { length: threads },
        (_, worker) =>
          new Promise<{ failures: string[] }>((resolve, reject) => {
            const thread = new Worker(new URL("../support/kv-writer.ts", import.meta.url), {
              workerData: { path, worker, puts, barrier },
            });
            thread.once("message", resolve);
            thread.once("error", reject);
          }),
      ),
    );
    expect(results.flatMap((r) => r.failures)).toEqual([]);
    // Each thread's last value of each of its keys is there.
    const kv = kvImports({ stores: ["s"], path }, [])["joule:function/kv"];
    const read = (key: string) => new TextDecoder().decode(kv.get("s", key));
    for (let worker = 0; worker < threads; worker++) {
      for (const slot of [0, 42, 99]) expect(read(`w${worker}-${slot}`)).toBe(String(puts - 100 + slot));
    }
    expect(read("shared")).toMatch(new RegExp(`^\\d:${puts - 1}$`));
  });
});
