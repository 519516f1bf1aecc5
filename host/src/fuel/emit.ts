/**
 * The code the instrumenter puts into function bodies. Fuel lives in a
 * local `L` while a function runs (TurboFan keeps it in a register); the
 * global `F`, shared by all the core modules of a component instance,
 * holds it between functions, and the shared global `R` the reserve the
 * next slices come from. See body.ts for when each piece is emitted.
 */
import type { Writer } from "./bytes.ts";
import { BULK_BYTES_SHIFT, GROW_PAGE_COST, OPERAND_CAP } from "./costs.ts";

/**
 * Indices the emitted code names: the fuel local L, its scratch T, the
 * shared fuel (F) and reserve (R) globals and the refill import.
 */
export interface Meter {
  /** What a draw takes from the reserve at a time. */
  slice: bigint;
  local: number;
  take: number;
  fuel: number;
  reserve: number;
  refill: number;
}

export function emitIndexed(w: Writer, op: number, index: number): void {
  w.byte(op);
  w.u32(index);
}

/** L -= cost */
export function charge(w: Writer, m: Meter, cost: number): void {
  emitIndexed(w, 0x20, m.local);
  w.byte(0x42); // i64.const
  w.s64(BigInt(cost));
  w.byte(0x7d); // i64.sub
  emitIndexed(w, 0x21, m.local);
}

/** F = L */
export function store(w: Writer, m: Meter): void {
  emitIndexed(w, 0x20, m.local);
  emitIndexed(w, 0x24, m.fuel);
}

/** L = F */
export function load(w: Writer, m: Meter): void {
  emitIndexed(w, 0x23, m.fuel);
  emitIndexed(w, 0x21, m.local);
}

/**
 * L = min(L, F), where an exception may land: arriving normally L is the
 * lower (F is a value L had earlier, or a grant L was then set to);
 * arriving from a throw F is (whoever threw stored its L first, and it
 * had been charged what ran since this frame's L was last current).
 */
export function land(w: Writer, m: Meter): void {
  emitIndexed(w, 0x20, m.local);
  emitIndexed(w, 0x23, m.fuel);
  emitIndexed(w, 0x20, m.local);
  emitIndexed(w, 0x23, m.fuel);
  w.byte(0x53); // i64.lt_s
  w.byte(0x1b); // select
  emitIndexed(w, 0x21, m.local);
}

/** if L < 0 { unreachable }, the end of a check whose fuel did not come. */
function trapIfNegative(w: Writer, m: Meter): void {
  emitIndexed(w, 0x20, m.local);
  w.byte(0x42);
  w.byte(0x00);
  w.byte(0x53); // i64.lt_s
  w.byte(0x04);
  w.byte(0x40);
  w.byte(0x00); // unreachable
  w.byte(0x0b);
}

/**
 * At a function entry: if L < 0 { F = L; refill(); L = F; if L < 0 { unreachable } }
 *
 * The host's refill (runtime/fuel-meter.ts) moves the next slice from the
 * reserve into F, or nothing when the invocation's budget is gone: the
 * guest then traps here. It traps itself rather than the host throwing,
 * because an exception thrown by an import can be caught by the guest's
 * catch_all, and a trap cannot.
 */
export function check(w: Writer, m: Meter): void {
  emitIndexed(w, 0x20, m.local);
  w.byte(0x42);
  w.byte(0x00);
  w.byte(0x53); // i64.lt_s
  w.byte(0x04); // if
  w.byte(0x40);
  store(w, m);
  emitIndexed(w, 0x10, m.refill);
  load(w, m);
  trapIfNegative(w, m);
  w.byte(0x0b);
}

/**
 * At a loop header or after a dynamic charge, the same without calling the
 * host: if L < 0 { T = min(R, slice − L); R −= T; L += T; F = L; if L < 0
 * { unreachable } }. A call in a loop, even one never taken, makes V8
 * compile the whole loop slower (40–280% on bench:fuel's core workloads):
 * so loops take their next slice from the shared reserve themselves.
 */
export function draw(w: Writer, m: Meter): void {
  emitIndexed(w, 0x20, m.local);
  w.byte(0x42);
  w.byte(0x00);
  w.byte(0x53); // i64.lt_s
  w.byte(0x04); // if
  w.byte(0x40);
  w.byte(0x42);
  w.s64(m.slice);
  emitIndexed(w, 0x20, m.local);
  w.byte(0x7d); // i64.sub: what covers the overdraw and a slice
  emitIndexed(w, 0x21, m.take);
  emitIndexed(w, 0x23, m.reserve);
  emitIndexed(w, 0x20, m.take);
  emitIndexed(w, 0x23, m.reserve);
  emitIndexed(w, 0x20, m.take);
  w.byte(0x53); // i64.lt_s
  w.byte(0x1b); // select: the reserve if it has less
  emitIndexed(w, 0x22, m.take);
  emitIndexed(w, 0x23, m.reserve);
  emitIndexed(w, 0x20, m.take);
  w.byte(0x7d);
  emitIndexed(w, 0x24, m.reserve); // R -= T (with T on the stack below)
  emitIndexed(w, 0x20, m.local);
  w.byte(0x7c); // i64.add
  emitIndexed(w, 0x22, m.local);
  emitIndexed(w, 0x24, m.fuel);
  trapIfNegative(w, m);
  w.byte(0x0b);
}

/**
 * Charges an amount taken from the operand on top of the stack (kept in a
 * scratch local and pushed back), then checks.
 */
export function chargeOperand(
  w: Writer,
  m: Meter,
  scratch: number,
  is64: boolean,
  scale: "pages" | "bytes" | "elements",
): void {
  emitIndexed(w, 0x21, scratch);
  emitIndexed(w, 0x20, m.local);
  if (is64) {
    // An i64 operand is unsigned here: a huge ("negative") one must not wrap the charge into a
    // credit. Anything past OPERAND_CAP is charged as OPERAND_CAP, which exhausts any budget.
    w.byte(0x42);
    w.s64(OPERAND_CAP);
    emitIndexed(w, 0x20, scratch);
    emitIndexed(w, 0x20, scratch);
    w.byte(0x42);
    w.s64(OPERAND_CAP);
    w.byte(0x56); // i64.gt_u
    w.byte(0x1b); // select: the cap when n >u cap, else n
  } else {
    emitIndexed(w, 0x20, scratch);
    w.byte(0xad); // i64.extend_i32_u
  }
  if (scale === "pages") {
    w.byte(0x42);
    w.s64(GROW_PAGE_COST);
    w.byte(0x7e); // i64.mul
  } else if (scale === "bytes") {
    w.byte(0x42);
    w.s64(BULK_BYTES_SHIFT);
    w.byte(0x88); // i64.shr_u
  }
  w.byte(0x7d); // i64.sub
  emitIndexed(w, 0x21, m.local);
  draw(w, m);
  emitIndexed(w, 0x20, scratch);
}

/**
 * Pushes whether growing memory/table `index` by the operand in `scratch`
 * would pass `limit` (an i64 from `pushLimit`), as an i32 condition.
 */
export function overLimit(
  w: Writer,
  sizeOp: number[],
  index: number,
  scratch: number,
  is64: boolean,
  pushLimit: () => void,
): void {
  const size = () => {
    for (const b of sizeOp) w.byte(b);
    w.u32(index);
    if (!is64) w.byte(0xad);
  };
  // size >u limit, or n >u limit - size: never `size + n`, which a huge n wraps.
  size();
  pushLimit();
  w.byte(0x56); // i64.gt_u
  emitIndexed(w, 0x20, scratch);
  if (!is64) w.byte(0xad);
  pushLimit();
  size();
  w.byte(0x7d); // i64.sub
  w.byte(0x56); // i64.gt_u
  w.byte(0x72); // i32.or
}

/** Replaces the grow's operand with one it cannot satisfy (so it returns -1) when it would pass the limit. */
export function boundedGrow(
  w: Writer,
  scratch: number,
  is64: boolean,
  over: () => void,
  growOp: number[],
  index: number,
): void {
  w.byte(is64 ? 0x42 : 0x41);
  w.s64(-1n);
  emitIndexed(w, 0x20, scratch);
  over();
  w.byte(0x1b); // select
  for (const b of growOp) w.byte(b);
  w.u32(index);
}
