/**
 * Instruments one function body.
 *
 * The body is cut into straight-line segments, ended by every branch,
 * merge point, call and trap; at the start of each segment its whole cost
 * (costs.ts) is subtracted from the fuel local L, so a trap in the middle
 * charges nothing more. Where L went below zero, the entry of a function
 * that calls asks the host for the next slice (refill), and a loop header
 * or a dynamic charge takes it from the shared reserve itself (emit.ts).
 *
 * A function comes out in one of two forms:
 *
 * - A twin (the usual form): the body moves to a new function that takes
 *   the fuel as an extra last parameter and gives it back as an extra last
 *   result, so that a direct call passes L in a register instead of storing
 *   it to the global before the call and loading it after (that store and
 *   load made recursive `fib` 106–269% slower metered; passing it costs a
 *   few percent). The original index keeps a small wrapper for everything
 *   that does not call directly (exports, tables, `ref.func`, the start
 *   function): it loads F, calls the twin and stores what comes back.
 *   The body is wrapped in a block with the function's results, so that a
 *   branch to the function's label needs no change, and L is pushed after it.
 * - Classic, for a function with a tail call the twin's signature cannot
 *   express (`return_call_indirect`, `return_call_ref`, a `return_call` to
 *   an import or to another classic function): L is loaded from F at entry
 *   and stored before every call and exit, as wasmtime does.
 *
 * Either way F is current whenever control may leave the module (calls to
 * imports, indirect calls, throws, traps by `unreachable`) and L is loaded
 * again after such a call: F is one counter shared by all the core modules
 * of a component instance, so whichever runs next continues from it. A
 * trap (other than `unreachable`) loses what ran since L was last stored:
 * at a call out of the module, or when a slice was drawn or refilled, so
 * less than one slice. Loop headers do not store it: a store to the
 * imported global at every iteration made the JS engine's interpreter
 * 5–10% slower, to bound what a trap loses more tightly than one slice.
 */
import { Reader, Writer } from "./bytes.ts";
import { cost, MAX_TABLE_ELEMENTS } from "./costs.ts";
import {
  boundedGrow,
  chargeOperand,
  check,
  draw,
  emitIndexed,
  land,
  load,
  type Meter,
  charge as minus,
  overLimit,
  store,
} from "./emit.ts";
import { FuelError } from "./fuel-error.ts";
import { ADDED_GLOBAL_IMPORTS } from "./index-shift.ts";
import {
  BULK_MEMORY,
  branch,
  decode,
  ENDS,
  GROW,
  type IndexTypes,
  LOOP,
  operand,
  STRAIGHT,
  skipValtype,
  TABLE_GROW,
} from "./instructions.ts";

/** How function and global indices change, the same for every body of a module. */
export interface Layout {
  /** Imported functions: their indices do not change; the refill import takes the next one. */
  importedFunctions: number;
  /** Imported globals: their indices do not change; fuel and reserve take the next two. */
  importedGlobals: number;
  /** What a loop header takes from the reserve at a time (costs.ts, SLICE). */
  slice: bigint;
  /** For each defined function, its twin's index, or -1 when it stays classic. */
  twins: Int32Array;
  fuel: number;
  reserve: number;
  memoryLimit: number;
  memoryRefused: number;
  indexTypes: IndexTypes;
}

export interface BodyPlan {
  params: number;
  twin: boolean;
  /** For a twin: the block type of its results (a value type, 0x40, or a type index), encoded. */
  resultsBlockType?: Uint8Array;
}

/** What instrumenting a body found that decides whether it can be a twin. */
export interface BodyFacts {
  /** It has a tail call a twin cannot make (indirect, or to an import). */
  blocksTwin: boolean;
  /** Defined functions (by defined index) it tail-calls directly. */
  tailCalls: number[];
}

const CALL = 0x10;
const RETURN_CALL = 0x12;
/** Leave the function (or may): F must be current first. Return is handled on its own. */
const EXITS = new Set([0x00, 0x08, 0x09, 0x0a, 0x18]);
const BRANCHES = new Set([0x0c, 0x0d, 0x0e, 0xd5, 0xd6]);
const OPENS = new Set([0x02, 0x03, 0x04, 0x06, 0x1f]);
const MAX_LOCALS = 50_000;

/** An unsigned LEB128 already validated by `decode`. */
function u32At(bytes: Uint8Array, at: number): number {
  let result = 0;
  let shift = 0;
  for (let i = at; ; i++) {
    const b = bytes[i] as number;
    result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result >>> 0;
    shift += 7;
  }
}

function leb32Length(bytes: Uint8Array, at: number): number {
  let n = 1;
  while ((bytes[at + n - 1] as number) & 0x80) n++;
  return n;
}

/** The wrapper left at a twinned function's own index: F in, the twin, F out. */
export function wrapperBody(params: number, twin: number, fuel: number, out: Writer): void {
  const body = new Writer(16 + params * 3);
  body.u32(0); // no locals
  for (let i = 0; i < params; i++) emitIndexed(body, 0x20, i);
  emitIndexed(body, 0x23, fuel);
  emitIndexed(body, 0x10, twin);
  emitIndexed(body, 0x24, fuel);
  body.byte(0x0b);
  out.sized(body);
}

export function instrumentBody(
  bytes: Uint8Array,
  start: number,
  end: number,
  plan: BodyPlan,
  layout: Layout,
  out: Writer,
): BodyFacts {
  const facts: BodyFacts = { blocksTwin: false, tailCalls: [] };
  const { params, twin } = plan;
  const imported = layout.importedFunctions;
  const r = new Reader(bytes, start, end);
  const declCount = r.u32();
  let declared = 0;
  for (let i = 0; i < declCount; i++) {
    declared += r.u32();
    skipValtype(r);
  }
  if (params + declared > MAX_LOCALS) throw new FuelError("unsupported", `a function with ${params + declared} locals`);
  const declsEnd = r.pos;
  // A twin's L is its extra parameter, after which the declared locals move up by one.
  const local = twin ? params : params + declared;
  const scratch32 = twin ? params + 1 + declared : local + 1;
  const scratch64 = scratch32 + 1;
  const take = scratch64 + 1;
  const m: Meter = { slice: layout.slice, local, take, fuel: layout.fuel, reserve: layout.reserve, refill: imported };
  const importedGlobals = layout.importedGlobals;
  const types = layout.indexTypes;

  const code = new Writer(Math.ceil((end - start) * 1.4) + 64);
  const seg = new Writer(256);
  let copyFrom = r.pos;
  let segCost = 0;
  // The entry check is written last, before everything, and only if the function calls (see below).
  let segCheck = false;
  let calls = false;
  let segLand = false;
  let landsAtEnd = false;
  /** Open blocks, innermost last: true where an exception from try_table lands at its end. */
  const blocks: boolean[] = [];
  /** Which open blocks are loops (a catch may not land at a loop header). */
  const loops: boolean[] = [];
  /**
   * Which open blocks' ends are merge points, reached other than by falling
   * through (a branch to them, an `if` or `try`): the end of any other block
   * (a loop's, a block nothing branches to) does not end a segment.
   */
  const merges: boolean[] = [];

  const copyTo = (to: number) => {
    if (to > copyFrom) seg.bytes(bytes.subarray(copyFrom, to));
    copyFrom = to;
  };
  /** The segment is complete: its prologue, then its code. */
  const close = () => {
    if (segLand) land(code, m);
    if (segCost > 0) minus(code, m, segCost);
    if (segCheck) draw(code, m);
    code.bytes(seg.result());
    seg.clear();
  };
  const next = (checked: boolean, landing: boolean) => {
    segCost = 0;
    segCheck = checked;
    segLand = landing;
  };
  /** A call out of this function that does not pass L: F current before, L reloaded after. */
  const callOut = (op: number, rest: () => void) => {
    store(seg, m);
    seg.byte(op);
    rest();
    load(seg, m);
  };

  for (;;) {
    if (r.pos >= end) throw new FuelError("malformed", "function body ends without `end`");
    const opStart = r.pos;
    const op = bytes[opStart] as number;
    const effect = decode(r, types);
    segCost += cost(op);
    if (op >= 0x10 && op <= 0x15) calls = true; // call, call_indirect, return_call*, call_ref
    const top = blocks.length - 1;
    if (op === 0x0b && top >= 0 && !merges[top] && !blocks[top]) {
      // Reached only by falling through: the segment runs on past it.
      blocks.pop();
      loops.pop();
      merges.pop();
      continue;
    }
    if (effect === STRAIGHT) {
      if (op === 0x02) {
        blocks.push(false);
        loops.push(false);
        merges.push(false);
      } else if (twin && op >= 0x20 && op <= 0x22) {
        const index = u32At(bytes, opStart + 1);
        if (index >= params) {
          copyTo(opStart);
          emitIndexed(seg, op, index + 1);
          copyFrom = r.pos;
        }
      } else if (op === 0x23 || op === 0x24) {
        const index = u32At(bytes, opStart + 1);
        if (index >= importedGlobals) {
          copyTo(opStart);
          emitIndexed(seg, op, index + ADDED_GLOBAL_IMPORTS); // past the fuel and reserve imports
          copyFrom = r.pos;
        }
      } else if (op === 0xd2) {
        const fn = u32At(bytes, opStart + 1);
        if (fn >= imported) {
          copyTo(opStart);
          emitIndexed(seg, op, fn + 1); // ref.func names the wrapper
          copyFrom = r.pos;
        }
      }
      continue;
    }

    if (effect === ENDS || effect === LOOP) {
      let landing = op === 0x07 || op === 0x19; // catch, catch_all
      let last = false;
      copyTo(opStart);
      if (op === CALL || op === RETURN_CALL) {
        const fn = u32At(bytes, opStart + 1);
        const defined = fn - imported;
        const target = defined >= 0 ? (layout.twins[defined] as number) : -1;
        if (op === RETURN_CALL && defined >= 0) facts.tailCalls.push(defined);
        if (op === CALL && target >= 0) {
          emitIndexed(seg, 0x20, local);
          emitIndexed(seg, CALL, target);
          emitIndexed(seg, 0x21, local);
        } else if (op === CALL) {
          callOut(CALL, () => seg.u32(defined >= 0 ? fn + 1 : fn));
        } else if (twin && target >= 0) {
          emitIndexed(seg, 0x20, local);
          emitIndexed(seg, RETURN_CALL, target);
        } else {
          if (twin) facts.blocksTwin = true;
          // Classic: to the callee's own index (the wrapper, for a twinned one).
          store(seg, m);
          emitIndexed(seg, RETURN_CALL, defined >= 0 ? fn + 1 : fn);
        }
      } else if (op === 0x11 || op === 0x14) {
        callOut(op, () => seg.bytes(bytes.subarray(opStart + 1, r.pos)));
      } else if (op === 0x13 || op === 0x15) {
        if (twin) facts.blocksTwin = true;
        store(seg, m);
        seg.bytes(bytes.subarray(opStart, r.pos));
      } else if (op === 0x0f) {
        if (twin) emitIndexed(seg, 0x20, local);
        else store(seg, m);
        seg.byte(op);
      } else {
        let flush = EXITS.has(op);
        if (OPENS.has(op)) {
          if (op === 0x1f) {
            for (const label of branch.catches) {
              const target = blocks.length - 1 - label;
              if (target < 0) {
                // Lands at the function's end: a classic function returns (F is current), a twin pushes L.
                landsAtEnd = true;
                continue;
              }
              if (loops[target]) throw new FuelError("unsupported", "a try_table catch that branches to a loop");
              blocks[target] = true;
            }
          }
          blocks.push(false);
          loops.push(op === 0x03);
          merges.push(op === 0x04 || op === 0x06);
        } else if (op === 0x0b || op === 0x18) {
          if (blocks.length === 0) {
            if (op === 0x18) throw new FuelError("malformed", "delegate outside a try");
            last = true;
            flush = !twin;
          } else {
            landing = blocks.pop() === true;
            loops.pop();
            merges.pop();
          }
        } else if (BRANCHES.has(op)) {
          for (const label of branch.labels) {
            const target = blocks.length - 1 - label;
            if (target >= 0 && !loops[target]) merges[target] = true;
          }
          // A twin's branches to its own label stay inside: they reach the block around its body.
          if (!twin) flush = branch.labels.some((label) => label >= blocks.length);
        }
        if (flush) store(seg, m);
        seg.bytes(bytes.subarray(opStart, r.pos));
        if (last && twin) {
          if (landsAtEnd) land(seg, m);
          emitIndexed(seg, 0x20, local);
          seg.byte(0x0b);
        }
      }
      copyFrom = r.pos;
      close();
      if (last) break;
      next(effect === LOOP, landing);
      continue;
    }

    // A dynamically charged operation: the segment up to it, then its own charge, then it.
    copyTo(opStart);
    const { is64, index } = operand;
    const scratch = is64 ? scratch64 : scratch32;
    chargeOperand(seg, m, scratch, is64, effect === GROW ? "pages" : effect === BULK_MEMORY ? "bytes" : "elements");
    if (effect === GROW) {
      // memory.grow: refused past the instance's limit, and the refusal flagged for the host.
      const over = () => overLimit(seg, [0x3f], index, scratch, is64, () => emitIndexed(seg, 0x23, layout.memoryLimit));
      emitIndexed(seg, 0x21, scratch);
      emitIndexed(seg, 0x23, layout.memoryRefused);
      over();
      seg.byte(0x72); // i32.or
      emitIndexed(seg, 0x24, layout.memoryRefused);
      boundedGrow(seg, scratch, is64, over, [0x40], index);
    } else if (effect === TABLE_GROW) {
      emitIndexed(seg, 0x21, scratch);
      boundedGrow(
        seg,
        scratch,
        is64,
        () =>
          overLimit(seg, [0xfc, 16], index, scratch, is64, () => {
            seg.byte(0x42);
            seg.s64(MAX_TABLE_ELEMENTS);
          }),
        [0xfc, 15],
        index,
      );
    } else {
      seg.bytes(bytes.subarray(opStart, r.pos));
    }
    copyFrom = r.pos;
    close();
    next(false, false);
  }
  if (r.pos !== end) throw new FuelError("malformed", "bytes after a function's final `end`");

  const body = new Writer(code.length + (declsEnd - start) + 64);
  body.u32(declCount + (twin ? 3 : 4));
  body.bytes(bytes.subarray(start + leb32Length(bytes, start), declsEnd));
  if (!twin) {
    body.u32(1);
    body.byte(0x7e); // L: i64
  }
  body.u32(1);
  body.byte(0x7f); // i32 scratch
  body.u32(1);
  body.byte(0x7e); // i64 scratch
  body.u32(1);
  body.byte(0x7e); // T: what a draw takes
  if (!twin) load(body, m);
  // Only a function that calls needs a check at its entry: recursion goes through calls, and a
  // leaf runs at most its own length (its loops check their headers) before its caller's next
  // check. Leaves are what a compiler inlines into loops, where a check would cost the most.
  if (calls) check(body, m);
  if (twin) {
    body.byte(0x02); // block: the original body, with the function's results
    body.bytes(plan.resultsBlockType as Uint8Array);
  }
  body.bytes(code.result());
  out.sized(body);
  return facts;
}
