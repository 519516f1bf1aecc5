import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeImage } from "../../host/src/runtime/memory-image.ts";
import { ChunkStore, cutPoints, readChunkedSync } from "../../host/src/store/chunk-store.ts";
import { joinSplit, splitImage, splitWasm } from "../../host/src/store/wasm-split.ts";
import { componentBytes } from "../support/host.ts";

let dir: string;
let store: ChunkStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "joule-chunks-"));
  store = new ChunkStore(dir, dir);
  await store.open();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("splitting Wasm and memory images into streams", () => {
  it("gives back exactly the bytes it split: a JS component, a WAT component, an image, and non-Wasm bytes", async () => {
    const js = await componentBytes("hello");
    const split = splitWasm(js);
    expect(split.splits.length).toBeGreaterThan(0);
    expect(split.payload.byteLength).toBeGreaterThan(1024 * 1024);
    expect(Buffer.from(joinSplit(split, js.byteLength)).equals(js)).toBe(true);
    for (const bytes of [
      await componentBytes("tiny"),
      new TextEncoder().encode("not wasm at all"),
      new Uint8Array(0),
    ]) {
      expect(Buffer.from(joinSplit(splitWasm(bytes), bytes.byteLength)).equals(Buffer.from(bytes))).toBe(true);
    }
    const image = encodeImage({
      segments: [
        { offset: 16, bytes: new Uint8Array([1, 2, 3]) },
        { offset: 4096, bytes: new Uint8Array(5000).fill(7) },
      ],
    });
    const imageSplit = splitImage(image);
    expect(imageSplit.payload.byteLength).toBe(5003);
    expect(Buffer.from(joinSplit(imageSplit, image.byteLength)).equals(Buffer.from(image))).toBe(true);
  });

  it("cuts chunks by content: a change early on leaves the later chunks as they were", () => {
    const data = new Uint8Array(512 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const changed = new Uint8Array(data);
    changed.set([9, 9, 9], 1000);
    const before = new Set(cutPoints(data));
    const after = cutPoints(changed);
    expect(after.filter((end) => end > 100_000).every((end) => before.has(end))).toBe(true);
    expect(Math.max(...after.map((end, i) => end - (after[i - 1] ?? 0)))).toBeLessThanOrEqual(64 * 1024);
  });
});

describe("the chunk store", () => {
  it("stores a blob's chunks once, reads it back whole, and refuses a damaged chunk", async () => {
    const js = await componentBytes("hello");
    const first = await store.put(js, dir, "wasm");
    const again = await store.put(js, dir, "wasm");
    expect(again.written).toBe(0);
    const recipePath = join(dir, "recipe.json");
    await store.writeRecipe(recipePath, first.recipe);
    expect((await store.read(recipePath)).equals(js)).toBe(true);
    expect(readChunkedSync(recipePath).equals(js)).toBe(true);

    const [hex, size] = first.recipe.streams.payload[3] as [string, number];
    await writeFile(join(store.dir, hex), zstdCompressSync(new Uint8Array(size).fill(1)));
    await expect(store.read(recipePath)).rejects.toThrow(/reassembled to other bytes/);
    expect(() => readChunkedSync(recipePath)).toThrow(/reassembled to other bytes/);
    expect((await readdir(store.dir)).length).toBeGreaterThan(100);
    expect(JSON.parse(await readFile(recipePath, "utf8")).format).toBe("joule-chunks/v1");
  });
});
