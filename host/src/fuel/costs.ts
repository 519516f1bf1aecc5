/**
 * What a unit of fuel is: one executed Wasm instruction that does work.
 *
 * Instructions that only give code its structure cost nothing, as in
 * wasmtime's fuel: `block`, `loop`, `try`, `try_table`, `end`, `else`,
 * `catch`, `catch_all`, `delegate`, `nop`, `drop`, `return` and
 * `unreachable` compile to no machine code of their own (a jump at most,
 * which the branch that takes it pays for). Charging them made fuel track
 * how a compiler nests blocks rather than work: a C++ interpreter's switch
 * is hundreds of nested blocks entered at every dispatch, and in the JS
 * engine's interpreter `block` was 82% of all instructions executed (4,866
 * of 5,895 per iteration of a plain JS loop), which is how a core could
 * appear to run 6.4×10^10 of them a second (issue 15).
 *
 * Besides: `memory.grow` costs GROW_PAGE_COST per 64 KiB page, bulk memory
 * operations 1 per 16 bytes, table operations 1 per element, charged from
 * their operand before they run.
 */

const FREE = new Uint8Array(256);
for (const op of [0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x0b, 0x0f, 0x18, 0x19, 0x1a, 0x1f]) FREE[op] = 1;

/** The static cost of the instruction whose first byte is `op`: 0 or 1. */
export function cost(op: number): number {
  return 1 - (FREE[op] as number);
}

export const GROW_PAGE_COST = 1024n;
/** Bulk memory operations cost 1 per 2^BULK_BYTES_SHIFT bytes. */
export const BULK_BYTES_SHIFT = 4n;
/** The largest operand a dynamic charge takes at face value (2^32; × GROW_PAGE_COST stays far from overflow). */
export const OPERAND_CAP = 1n << 32n;
export const MAX_TABLE_ELEMENTS = 100_000n;

/**
 * Fuel moved from the reserve to the counter at a time, by loop headers
 * (emit.ts, draw) and by the host's refill (runtime/fuel-meter.ts): 1.5–6
 * ms of CPU here, at the 0.5–2 × 10^10 fuel/s the workloads of bench:fuel
 * run at. A refill costs 0.14 µs (bench:fuel), so at this size refills
 * take under 0.01% of the time; smaller slices would only make a trap's
 * uncharged tail (at most one slice) and the refill hook's period shorter.
 */
export const SLICE = 30_000_000n;
