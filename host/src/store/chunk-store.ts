/**
 * Large blobs stored once per distinct piece: a blob is cut into
 * content-defined chunks (a gear rolling hash picks the cut points from the
 * bytes themselves, so an insertion or change in one place moves only the
 * cuts near it), each chunk is zstd-compressed and stored by the sha256 of
 * its bytes, and the blob becomes a small recipe listing its chunks.
 *
 * Why: every JS function carries the same ~9 MB engine; only its heap image
 * differs. Chunked, the engine's chunks are stored by the first function and
 * found again by every later one, so a function adds only its own chunks.
 *
 *   chunks/sha256/<hex>   a chunk, zstd-compressed; <hex> is the digest of its bytes
 *   a recipe (JSON)       {"format":"joule-chunks/v1","kind","digest","size","dir","splits",
 *                          "streams":{"skeleton":[[hex,size],...],"headers":[...],"payload":[...]}}
 *                         `dir` is the chunk directory relative to the recipe's own file
 *
 * Before chunking, a Wasm blob or a memory image is split into streams
 * (store/wasm-split.ts) so that the heap bytes a component and its memory
 * image share are chunked alike and stored once.
 *
 * Reads reassemble, check every chunk's digest and the whole blob's digest:
 * a damaged chunk is an error, never wrong bytes.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { z } from "zod";
import { makeDir, writeAtomic } from "./atomic.ts";
import { joinSplit, type SplitKind, splitImage, splitWasm } from "./wasm-split.ts";

export const RECIPE_FORMAT = "joule-chunks/v1";

/** Cut points: at least 4 KiB apart, at most 64 KiB, about 16 KiB on average. */
const MIN_CHUNK = 4 * 1024;
const MAX_CHUNK = 64 * 1024;
const AVERAGE_BITS = 14;
const ZSTD_LEVEL = 9;

const chunkList = z.array(z.tuple([z.string().regex(/^[0-9a-f]{64}$/), z.number().int().positive()]));

export const recipeSchema = z
  .object({
    format: z.literal(RECIPE_FORMAT),
    kind: z.enum(["wasm", "image"]),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
    dir: z.string(),
    splits: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive()])),
    streams: z.object({ skeleton: chunkList, headers: chunkList, payload: chunkList }).strict(),
  })
  .strict();

const STREAMS = ["skeleton", "headers", "payload"] as const;

export type Recipe = z.infer<typeof recipeSchema>;

/** The gear table: 256 fixed pseudo-random words (from sha256, so every host cuts alike). */
const GEAR = (() => {
  const table = new Uint32Array(256);
  let seed = createHash("sha256").update("joule chunk gear v1").digest();
  for (let i = 0; i < 256; i++) {
    if (i % 8 === 0) seed = createHash("sha256").update(seed).digest();
    table[i] = seed.readUInt32LE((i % 8) * 4);
  }
  return table;
})();

/** Content-defined cut points of `data` (chunk end offsets). */
export function cutPoints(data: Uint8Array): number[] {
  const mask = (1 << AVERAGE_BITS) - 1;
  const ends: number[] = [];
  let start = 0;
  let hash = 0;
  for (let i = 0; i < data.length; i++) {
    hash = ((hash << 1) + (GEAR[data[i] as number] as number)) >>> 0;
    const length = i - start + 1;
    if ((length >= MIN_CHUNK && (hash & mask) === 0) || length >= MAX_CHUNK) {
      ends.push(i + 1);
      start = i + 1;
      hash = 0;
    }
  }
  if (start < data.length) ends.push(data.length);
  return ends;
}

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export class ChunkStore {
  readonly dir: string;
  readonly #tmp: string;

  constructor(root: string, tmp: string) {
    this.dir = join(root, "chunks", "sha256");
    this.#tmp = tmp;
  }

  async open(): Promise<void> {
    await makeDir(this.dir);
  }

  /**
   * Stores the chunks of `data` that are not here yet and returns its recipe,
   * for a recipe file that will live in `recipeDir`. Returns how many bytes
   * were newly written, for the figures.
   */
  async put(data: Uint8Array, recipeDir: string, kind: SplitKind): Promise<{ recipe: Recipe; written: number }> {
    const split = kind === "wasm" ? splitWasm(data) : splitImage(data);
    let written = 0;
    const streams = { skeleton: [], headers: [], payload: [] } as Recipe["streams"];
    for (const name of STREAMS) {
      const stream = split[name];
      let start = 0;
      for (const end of cutPoints(stream)) {
        const piece = stream.subarray(start, end);
        const hex = sha256Hex(piece);
        const path = join(this.dir, hex);
        if (!(await stat(path).catch(() => undefined))) {
          const packed = zstdCompressSync(piece, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
          await writeAtomic(this.#tmp, path, packed);
          written += packed.byteLength;
        }
        streams[name].push([hex, piece.byteLength]);
        start = end;
      }
    }
    const recipe: Recipe = {
      format: RECIPE_FORMAT,
      kind,
      digest: `sha256:${sha256Hex(data)}`,
      size: data.byteLength,
      dir: relative(recipeDir, this.dir),
      splits: split.splits,
      streams,
    };
    return { recipe, written };
  }

  /** Writes a recipe file (atomically). */
  async writeRecipe(path: string, recipe: Recipe): Promise<void> {
    await writeAtomic(this.#tmp, path, JSON.stringify(recipe));
  }

  async read(recipePath: string): Promise<Buffer> {
    const recipe = parseRecipe(await readFile(recipePath, "utf8"), recipePath);
    const dir = resolve(dirname(recipePath), recipe.dir);
    const packed: Record<string, Buffer[]> = {};
    for (const name of STREAMS) {
      packed[name] = await Promise.all(recipe.streams[name].map(([hex]) => readFile(join(dir, hex))));
    }
    return assemble(recipe, packed);
  }
}

function parseRecipe(text: string, path: string): Recipe {
  const parsed = recipeSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${path} is not a chunk recipe`);
  return parsed.data;
}

/** Decompresses one stream's chunks and joins them. */
function stream(chunks: Array<[string, number]>, packed: Buffer[]): Uint8Array {
  const out = Buffer.allocUnsafe(chunks.reduce((n, [, size]) => n + size, 0));
  let at = 0;
  chunks.forEach(([hex, size], i) => {
    const piece = zstdDecompressSync(packed[i] as Buffer);
    // The whole blob's digest below catches a damaged chunk; sizes are checked here to stay in bounds.
    if (piece.byteLength !== size) throw new Error(`chunk ${hex} is damaged`);
    piece.copy(out, at);
    at += size;
  });
  return out;
}

/** Joins the streams and checks the result against the blob's digest. */
function assemble(recipe: Recipe, packed: Record<string, Buffer[]>): Buffer {
  const out = Buffer.from(
    joinSplit(
      {
        kind: recipe.kind,
        splits: recipe.splits,
        skeleton: stream(recipe.streams.skeleton, packed.skeleton ?? []),
        headers: stream(recipe.streams.headers, packed.headers ?? []),
        payload: stream(recipe.streams.payload, packed.payload ?? []),
      },
      recipe.size,
    ).buffer,
  );
  if (`sha256:${sha256Hex(out)}` !== recipe.digest) throw new Error(`${recipe.digest} reassembled to other bytes`);
  return out;
}

/** The same, synchronously, for a worker making an instance (it reads files synchronously there). */
export function readChunkedSync(recipePath: string): Buffer {
  const recipe = parseRecipe(readFileSync(recipePath, "utf8"), recipePath);
  const dir = resolve(dirname(recipePath), recipe.dir);
  const packed: Record<string, Buffer[]> = {};
  for (const name of STREAMS) packed[name] = recipe.streams[name].map(([hex]) => readFileSync(join(dir, hex)));
  return assemble(recipe, packed);
}

/** Every chunk a recipe file names (for garbage collection); undefined if it cannot be read. */
export async function recipeChunks(recipePath: string): Promise<string[] | undefined> {
  try {
    const { streams } = parseRecipe(await readFile(recipePath, "utf8"), recipePath);
    return STREAMS.flatMap((name) => streams[name].map(([hex]) => hex));
  } catch {
    return undefined;
  }
}
