/**
 * Decodes one instruction of a function body and says what it means for
 * metering. It knows every instruction V8 in Node 24 accepts for the
 * proposals Joule meters (MVP, multi-value, sign extension, saturating
 * conversions, bulk memory, reference types, typed function references,
 * SIMD and relaxed SIMD, threads/atomics, tail calls, exceptions, multi-
 * memory, memory64); GC instructions and anything unknown are refused.
 */
import type { Reader } from "./bytes.ts";
import { FuelError } from "./fuel-error.ts";

/** What an instruction does to the current straight-line segment. */
export const STRAIGHT = 0; // runs on: stays in the segment
export const ENDS = 1; // a branch, call, merge point or trap: the segment ends after it
export const LOOP = 2; // a loop header: the segment ends and the next one is checked each iteration
export const GROW = 3; // memory.grow: charged per page, before it runs
export const BULK_MEMORY = 4; // memory.fill/copy/init: charged per byte
export const BULK_TABLE = 5; // table.fill/copy/init: charged per element
export const TABLE_GROW = 6; // table.grow: charged per element, and bounded

export type Effect = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/** The address types of the module's memories and tables (true = 64-bit), imports first. */
export interface IndexTypes {
  memory64: boolean[];
  table64: boolean[];
}

/** Set by `decode` for GROW/BULK_*: whether the operand it will be charged on is an i64. */
export const operand = { is64: false, index: 0 };

/**
 * Set by `decode` for branches: their label depths; for try_table, the
 * labels its catch clauses jump to when an exception lands.
 */
export const branch = { labels: [] as number[], catches: [] as number[] };

/** Set by `decode` when it meets memory.init or data.drop: the code uses its data segments. */
export const seen = { dataSegmentOps: false };

const VALTYPE_SINGLE = new Set([
  0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x6e, 0x6d, 0x6c, 0x6b, 0x6a, 0x69, 0x71, 0x72, 0x73, 0x74,
]);

/** Skips a value type (numeric, vector, or reference with its heap type). */
export function skipValtype(r: Reader): void {
  const b = r.byte();
  if (VALTYPE_SINGLE.has(b)) return;
  if (b === 0x63 || b === 0x64) {
    r.s33();
    return;
  }
  throw new FuelError("unsupported", `value type 0x${b.toString(16)} at byte ${r.pos - 1}`);
}

function skipBlockType(r: Reader): void {
  const b = r.peek();
  if (b === 0x40) {
    r.pos++;
    return;
  }
  if (VALTYPE_SINGLE.has(b) || b === 0x63 || b === 0x64) {
    skipValtype(r);
    return;
  }
  r.s33(); // a type index
}

/** memarg: alignment (bit 6 set: a memory index follows), then the offset. Returns the memory index. */
function skipMemarg(r: Reader): number {
  const align = r.u32();
  const memory = align & 0x40 ? r.u32() : 0;
  r.skipLeb(10);
  return memory;
}

function memoryIs64(types: IndexTypes, index: number): boolean {
  return types.memory64[index] === true;
}

function tableIs64(types: IndexTypes, index: number): boolean {
  return types.table64[index] === true;
}

function decodeBulk(r: Reader, types: IndexTypes): Effect {
  const sub = r.u32();
  switch (sub) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
      return STRAIGHT; // saturating truncations
    case 8: {
      seen.dataSegmentOps = true;
      r.u32(); // memory.init data
      operand.is64 = false; // its length is always an i32
      r.u32();
      return BULK_MEMORY;
    }
    case 9:
      seen.dataSegmentOps = true;
      r.u32(); // data.drop
      return STRAIGHT;
    case 10: {
      const dst = r.u32(); // memory.copy
      const src = r.u32();
      operand.is64 = memoryIs64(types, dst) && memoryIs64(types, src);
      return BULK_MEMORY;
    }
    case 11:
      operand.is64 = memoryIs64(types, r.u32()); // memory.fill
      return BULK_MEMORY;
    case 12:
      r.u32(); // table.init elem table
      r.u32();
      operand.is64 = false;
      return BULK_TABLE;
    case 13:
      r.u32(); // elem.drop
      return STRAIGHT;
    case 14: {
      const dst = r.u32(); // table.copy
      const src = r.u32();
      operand.is64 = tableIs64(types, dst) && tableIs64(types, src);
      return BULK_TABLE;
    }
    case 15:
      operand.index = r.u32(); // table.grow
      operand.is64 = tableIs64(types, operand.index);
      return TABLE_GROW;
    case 16:
      r.u32(); // table.size
      return STRAIGHT;
    case 17:
      operand.is64 = tableIs64(types, r.u32()); // table.fill
      return BULK_TABLE;
    default:
      throw new FuelError("unsupported", `instruction 0xfc ${sub} at byte ${r.pos}`);
  }
}

function decodeSimd(r: Reader): Effect {
  const sub = r.u32();
  if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) {
    skipMemarg(r); // loads, store, load_zero
  } else if (sub === 0x0c || sub === 0x0d) {
    r.skip(16); // v128.const, i8x16.shuffle
  } else if (sub >= 0x15 && sub <= 0x22) {
    r.skip(1); // extract/replace lane
  } else if (sub >= 0x54 && sub <= 0x5b) {
    skipMemarg(r); // load/store lane
    r.skip(1);
  } else if (sub > 0x113) {
    throw new FuelError("unsupported", `instruction 0xfd ${sub} at byte ${r.pos}`);
  }
  return STRAIGHT;
}

function decodeAtomic(r: Reader): Effect {
  const sub = r.u32();
  if (sub === 0x03) {
    r.skip(1); // atomic.fence
    return STRAIGHT;
  }
  if (sub > 0x4e) throw new FuelError("unsupported", `instruction 0xfe ${sub} at byte ${r.pos}`);
  skipMemarg(r);
  // wait/notify can block or wake: a point where execution leaves straight-line code.
  return sub <= 0x02 ? ENDS : STRAIGHT;
}

/** Decodes the instruction at `r.pos`, leaves `r.pos` after it, and returns its effect. */
export function decode(r: Reader, types: IndexTypes): Effect {
  const op = r.byte();
  if (op >= 0x45 && op <= 0xc4) return STRAIGHT; // numeric, no immediates
  switch (op) {
    case 0x00: // unreachable
      return ENDS;
    case 0x01: // nop
      return STRAIGHT;
    case 0x02: // block: not a branch, the segment runs on into it
      skipBlockType(r);
      return STRAIGHT;
    case 0x03:
      skipBlockType(r);
      return LOOP;
    case 0x04: // if
    case 0x06: // try
      skipBlockType(r);
      return ENDS;
    case 0x05: // else
    case 0x0b: // end
    case 0x0f: // return
    case 0x0a: // throw_ref
    case 0x19: // catch_all
      return ENDS;
    case 0x0c: // br
    case 0x0d: // br_if
    case 0xd5: // br_on_null
    case 0xd6: // br_on_non_null
      branch.labels.length = 0;
      branch.labels.push(r.u32());
      return ENDS;
    case 0x07: // catch tag
    case 0x08: // throw tag
    case 0x09: // rethrow depth
    case 0x10: // call
    case 0x12: // return_call
    case 0x14: // call_ref
    case 0x15: // return_call_ref
    case 0x18: // delegate
      r.u32();
      return ENDS;
    case 0x0e: {
      const n = r.u32(); // br_table
      branch.labels.length = 0;
      for (let i = 0; i <= n; i++) branch.labels.push(r.u32());
      return ENDS;
    }
    case 0x11: // call_indirect type table
    case 0x13: // return_call_indirect
      r.u32();
      r.u32();
      return ENDS;
    case 0x1f: {
      skipBlockType(r); // try_table
      const n = r.u32();
      branch.catches.length = 0;
      for (let i = 0; i < n; i++) {
        const kind = r.byte();
        if (kind === 0x00 || kind === 0x01) r.u32();
        else if (kind !== 0x02 && kind !== 0x03)
          throw new FuelError("malformed", `catch clause ${kind} at byte ${r.pos}`);
        branch.catches.push(r.u32());
      }
      return ENDS;
    }
    case 0x1a: // drop
    case 0x1b: // select
    case 0xd1: // ref.is_null
    case 0xd3: // ref.eq
    case 0xd4: // ref.as_non_null
      return STRAIGHT;
    case 0x1c: {
      const n = r.u32(); // select t*
      for (let i = 0; i < n; i++) skipValtype(r);
      return STRAIGHT;
    }
    case 0x20: // local.get
    case 0x21: // local.set
    case 0x22: // local.tee
    case 0x23: // global.get
    case 0x24: // global.set
    case 0x25: // table.get
    case 0x26: // table.set
    case 0xd2: // ref.func
      r.u32();
      return STRAIGHT;
    case 0x3f: // memory.size
      r.u32();
      return STRAIGHT;
    case 0x40:
      operand.index = r.u32(); // memory.grow
      operand.is64 = memoryIs64(types, operand.index);
      return GROW;
    case 0x41:
      r.skipLeb(5); // i32.const
      return STRAIGHT;
    case 0x42:
      r.skipLeb(10); // i64.const
      return STRAIGHT;
    case 0x43:
      r.skip(4); // f32.const
      return STRAIGHT;
    case 0x44:
      r.skip(8); // f64.const
      return STRAIGHT;
    case 0xd0:
      r.s33(); // ref.null heap type
      return STRAIGHT;
    case 0xfc:
      return decodeBulk(r, types);
    case 0xfd:
      return decodeSimd(r);
    case 0xfe:
      return decodeAtomic(r);
    case 0xfb:
      throw new FuelError(
        "unsupported",
        `GC instruction at byte ${r.pos - 1}: garbage-collected types are not metered yet`,
      );
    default:
      if (op >= 0x28 && op <= 0x3e) {
        skipMemarg(r); // loads and stores
        return STRAIGHT;
      }
      throw new FuelError("unsupported", `unknown instruction 0x${op.toString(16)} at byte ${r.pos - 1}`);
  }
}
