/**
 * The reference fuel counter: a deliberately naive rewriter, kept here in
 * test/ and never used by the host. Before every instruction of every
 * function body it adds that instruction's cost (1, or 0 for the
 * structural ones listed below) to an exported i64 global of its own
 * (`reference:count`), and before each operation charged by its operand it
 * adds that charge, computed from the operand where the operation takes it:
 * no segments, no local counter, no flushes, no checks, no new imports. For
 * any run that completes, the production instrumenter
 * (host/src/fuel/instrument.ts) must charge exactly what this counts.
 *
 * What is shared with production, and why that is safe: the Reader/Writer of
 * the binary format and `decode`, for where each instruction ends. A wrong
 * length there breaks both modules loudly (V8 refuses them); what an
 * instruction costs and which ones take a dynamic charge is decided here, on
 * its own, from the opcode.
 */
import { Reader, Writer } from "../../host/src/fuel/bytes.ts";
import { decode, type IndexTypes } from "../../host/src/fuel/instructions.ts";

export const COUNT_EXPORT = "reference:count";

/**
 * The documented charges (README, "Fuel and limits"), restated here on
 * purpose rather than imported: instructions that only structure code cost
 * nothing (unreachable, nop, block, loop, else, try, catch, end, return,
 * delegate, catch_all, drop, try_table), every other one 1.
 */
const FREE_OPCODES = [0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x0b, 0x0f, 0x18, 0x19, 0x1a, 0x1f];
const PAGE_COST = 1024n;
const BYTES_PER_UNIT = 16n;
const OPERAND_CAP = 1n << 32n;

type Scale = "pages" | "bytes" | "elements";

interface Dynamic {
  scale: Scale;
  /** Whether the operand is an i64 (a 64-bit memory or table). */
  is64: boolean;
}

interface Shape {
  importedGlobals: number;
  definedGlobals: number;
  memory64: boolean[];
  table64: boolean[];
  paramCounts: number[];
  functionTypes: number[];
}

function limits64(r: Reader): boolean {
  const flags = r.byte();
  const is64 = (flags & 0x04) !== 0;
  r.skipLeb(10);
  if (flags & 0x01) r.skipLeb(10);
  return is64;
}

function skipRefType(r: Reader): void {
  const b = r.byte();
  if (b === 0x63 || b === 0x64) r.s33();
}

function skipExpr(r: Reader): void {
  const types: IndexTypes = { memory64: [], table64: [] };
  while (r.peek() !== 0x0b) decode(r, types);
  r.pos++;
}

function readShape(bytes: Uint8Array): Shape {
  const shape: Shape = {
    importedGlobals: 0,
    definedGlobals: 0,
    memory64: [],
    table64: [],
    paramCounts: [],
    functionTypes: [],
  };
  const r = new Reader(bytes, 8);
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const s = new Reader(bytes, r.pos, r.pos + size);
    if (id === 1) {
      for (let n = s.u32(), i = 0; i < n; i++) {
        s.byte(); // 0x60
        const params = s.u32();
        for (let p = 0; p < params; p++) skipRefType(s);
        for (let q = s.u32(), p = 0; p < q; p++) skipRefType(s);
        shape.paramCounts.push(params);
      }
    } else if (id === 2) {
      for (let n = s.u32(), i = 0; i < n; i++) {
        s.name();
        s.name();
        const kind = s.byte();
        if (kind === 0x00) s.u32();
        else if (kind === 0x01) {
          skipRefType(s);
          shape.table64.push(limits64(s));
        } else if (kind === 0x02) shape.memory64.push(limits64(s));
        else if (kind === 0x03) {
          skipRefType(s);
          s.byte();
          shape.importedGlobals++;
        } else {
          s.byte();
          s.u32();
        }
      }
    } else if (id === 3) {
      for (let n = s.u32(), i = 0; i < n; i++) shape.functionTypes.push(s.u32());
    } else if (id === 4) {
      for (let n = s.u32(), i = 0; i < n; i++) {
        const withInit = s.peek() === 0x40;
        if (withInit) s.pos += 2;
        skipRefType(s);
        shape.table64.push(limits64(s));
        if (withInit) skipExpr(s);
      }
    } else if (id === 5) {
      for (let n = s.u32(), i = 0; i < n; i++) shape.memory64.push(limits64(s));
    } else if (id === 6) {
      shape.definedGlobals = s.u32();
    }
    r.pos += size;
  }
  return shape;
}

/** What an instruction is charged besides its 1, read from its own immediates; undefined for none. */
function dynamicCharge(bytes: Uint8Array, at: number, shape: Shape): Dynamic | undefined {
  const r = new Reader(bytes, at);
  const op = r.byte();
  if (op === 0x40) return { scale: "pages", is64: shape.memory64[r.u32()] === true };
  if (op !== 0xfc) return undefined;
  const sub = r.u32();
  const memory = (i: number) => shape.memory64[i] === true;
  const table = (i: number) => shape.table64[i] === true;
  switch (sub) {
    case 8: // memory.init: its length is an i32 whatever the memory
      return { scale: "bytes", is64: false };
    case 10: {
      const dst = r.u32();
      return { scale: "bytes", is64: memory(dst) && memory(r.u32()) };
    }
    case 11:
      return { scale: "bytes", is64: memory(r.u32()) };
    case 12:
      return { scale: "elements", is64: false };
    case 14: {
      const dst = r.u32();
      return { scale: "elements", is64: table(dst) && table(r.u32()) };
    }
    case 15:
    case 17:
      return { scale: "elements", is64: table(r.u32()) };
    default:
      return undefined;
  }
}

function addToCount(w: Writer, counter: number, amount: () => void): void {
  w.byte(0x23); // global.get
  w.u32(counter);
  amount();
  w.byte(0x7c); // i64.add
  w.byte(0x24); // global.set
  w.u32(counter);
}

/** count += charge(operand), the operand kept in `scratch` and pushed back. */
function chargeOperand(w: Writer, counter: number, scratch: number, dynamic: Dynamic): void {
  w.byte(0x21);
  w.u32(scratch);
  addToCount(w, counter, () => {
    w.byte(0x20);
    w.u32(scratch);
    if (dynamic.is64) {
      // min_u(n, cap), written out plainly
      w.byte(0x42);
      w.s64(OPERAND_CAP);
      w.byte(0x20);
      w.u32(scratch);
      w.byte(0x42);
      w.s64(OPERAND_CAP);
      w.byte(0x54); // i64.lt_u
      w.byte(0x1b); // select: n when n <u cap
    } else w.byte(0xad); // i64.extend_i32_u
    if (dynamic.scale === "pages") {
      w.byte(0x42);
      w.s64(PAGE_COST);
      w.byte(0x7e);
    } else if (dynamic.scale === "bytes") {
      w.byte(0x42);
      w.s64(BYTES_PER_UNIT);
      w.byte(0x80); // i64.div_u
    }
  });
  w.byte(0x20);
  w.u32(scratch);
}

function rewriteBody(bytes: Uint8Array, start: number, end: number, params: number, counter: number, shape: Shape) {
  const r = new Reader(bytes, start, end);
  let locals = params;
  const declsStart = r.pos;
  const decls = r.u32();
  for (let i = 0; i < decls; i++) {
    locals += r.u32();
    skipRefType(r);
  }
  const declsEnd = r.pos;
  const scratch32 = locals;
  const scratch64 = locals + 1;
  const body = new Writer(Math.ceil((end - start) * 6) + 64);
  body.u32(decls + 2);
  // the declarations after their count, as they were
  body.bytes(bytes.subarray(declsStart + lebLength(bytes, declsStart), declsEnd));
  body.u32(1);
  body.byte(0x7f);
  body.u32(1);
  body.byte(0x7e);
  const types: IndexTypes = { memory64: shape.memory64, table64: shape.table64 };
  while (r.pos < end) {
    const at = r.pos;
    decode(r, types);
    if (!FREE_OPCODES.includes(bytes[at] as number)) {
      addToCount(body, counter, () => {
        body.byte(0x42);
        body.s64(1n);
      });
    }
    const dynamic = dynamicCharge(bytes, at, shape);
    if (dynamic) chargeOperand(body, counter, dynamic.is64 ? scratch64 : scratch32, dynamic);
    body.bytes(bytes.subarray(at, r.pos));
  }
  return body;
}

function lebLength(bytes: Uint8Array, at: number): number {
  let n = 1;
  while ((bytes[at + n - 1] as number) & 0x80) n++;
  return n;
}

/** The module with every instruction counted into `reference:count`. */
export function countEveryInstruction(input: Uint8Array): Uint8Array {
  const shape = readShape(input);
  const counter = shape.importedGlobals + shape.definedGlobals;
  const out = new Writer(input.length * 6 + 1024);
  out.bytes(input.subarray(0, 8));
  const r = new Reader(input, 8);
  let sawGlobals = false;
  let sawExports = false;
  const globalSection = (existing?: Reader) => {
    const w = new Writer(64);
    w.u32((existing ? existing.u32() : 0) + 1);
    if (existing) w.bytes(input.subarray(existing.pos, existing.end));
    w.byte(0x7e);
    w.byte(0x01);
    w.byte(0x42);
    w.s64(0n);
    w.byte(0x0b);
    out.byte(6);
    out.sized(w);
  };
  const exportSection = (existing?: Reader) => {
    const w = new Writer(64);
    w.u32((existing ? existing.u32() : 0) + 1);
    if (existing) w.bytes(input.subarray(existing.pos, existing.end));
    w.name(COUNT_EXPORT);
    w.byte(0x03);
    w.u32(counter);
    out.byte(7);
    out.sized(w);
  };
  // Section ids in their binary order (datacount, 12, sits between 9 and 10; tags, 13, between 5 and 6).
  const order = (id: number) => [0, 1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11].indexOf(id);
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const s = new Reader(input, r.pos, r.pos + size);
    if (id !== 0 && !sawGlobals && order(id) > order(6)) {
      globalSection();
      sawGlobals = true;
    }
    if (id !== 0 && !sawExports && order(id) > order(7)) {
      exportSection();
      sawExports = true;
    }
    if (id === 6) {
      globalSection(s);
      sawGlobals = true;
    } else if (id === 7) {
      exportSection(s);
      sawExports = true;
    } else if (id === 10) {
      const code = new Writer(size * 6 + 16);
      const n = s.u32();
      code.u32(n);
      for (let i = 0; i < n; i++) {
        const bodySize = s.u32();
        const params = shape.paramCounts[shape.functionTypes[i] as number] as number;
        code.sized(rewriteBody(input, s.pos, s.pos + bodySize, params, counter, shape));
        s.pos += bodySize;
      }
      out.byte(10);
      out.sized(code);
    } else {
      out.byte(id);
      out.u32(size);
      out.bytes(input.subarray(r.pos, r.pos + size));
    }
    r.pos += size;
  }
  if (!sawGlobals) globalSection();
  if (!sawExports) exportSection();
  return out.result().slice();
}
