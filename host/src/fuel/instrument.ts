/**
 * The fuel instrumenter: a streaming rewriter of core WebAssembly modules.
 *
 * It adds one mutable i64 global, exported (as `joule:fuel`, or with a suffix
 * if the module already exports that name), holding the fuel left. The new
 * global is appended after the module's own, so no index changes. Each
 * function body is cut into straight-line segments, ended by every branch,
 * merge point, call and trap; at the start of each segment the whole
 * segment's cost is subtracted (so a trap in the middle charges nothing
 * more), and at function entries and loop headers the global is checked:
 * below zero traps with `unreachable`. `memory.grow` is charged per page and
 * bulk memory and table operations per byte/element, from their operand,
 * before they run, and checked at once. The host reads the global after a
 * call, so the budget is exact: a run whose last segments overdrew it fails
 * even if no check was reached.
 *
 * Costs: 1 per instruction; memory.grow GROW_PAGE_COST per 64 KiB page;
 * bulk memory 1 per 16 bytes; table ops 1 per element.
 *
 * Memory and tables are bounded the same way: two more globals are
 * appended and exported, the memory limit in pages (`joule:memory-limit`,
 * set by the host per instance) and a flag set when a grow was refused
 * (`joule:memory-refused`). A `memory.grow` that would pass the limit, or a
 * `table.grow` past MAX_TABLE_ELEMENTS, returns -1 as a failed grow does.
 *
 * The input is never passed through unmetered: what cannot be decoded is
 * refused with a FuelError.
 */
import { Reader, Writer } from "./bytes.ts";
import { FuelError } from "./fuel-error.ts";
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
  seen,
  skipValtype,
  TABLE_GROW,
} from "./instructions.ts";

export const FUEL_EXPORT = "joule:fuel";

export const GROW_PAGE_COST = 1024n;
/** The largest operand a dynamic charge takes at face value (2^32; × GROW_PAGE_COST stays far from overflow). */
const OPERAND_CAP = 1n << 32n;
export const MAX_TABLE_ELEMENTS = 100_000n;
export const MEMORY_LIMIT_EXPORT = "joule:memory-limit";
export const MEMORY_REFUSED_EXPORT = "joule:memory-refused";
/** The memory limit a module starts with (pages): 4 GiB, until the host sets its own. */
const DEFAULT_MEMORY_LIMIT_PAGES = 65536n;
const BULK_BYTES_SHIFT = 4n;

export interface InstrumentOptions {
  /** Fuel the global holds at instantiation, for start functions and initializers. */
  initialFuel: bigint;
  /**
   * Split the module's data off into a memory image where that is safe (no
   * start function, a memory of its own, only active segments at constant
   * offsets, no memory.init/data.drop): the code module left is then the
   * same for every guest built from the same engine, and compiles once.
   */
  splitData?: boolean;
  /** Take out the start section and export the start function (see MeterExports.start). */
  deferStart?: boolean;
}

export const START_EXPORT = "joule:start";

/** Active data segments, to be written into memory `MEMORY_EXPORT` right after instantiation. */
export interface MemoryImage {
  segments: Array<{ offset: number; bytes: Uint8Array }>;
}

export const MEMORY_EXPORT = "joule:memory";
export const GLOBAL_EXPORT_PREFIX = "joule:global-";
export const TABLE_EXPORT_PREFIX = "joule:table-";

export interface InstrumentResult {
  bytes: Uint8Array;
  /** Names of the exported globals the host drives. */
  exports: MeterExports;
  /** The largest initial size of a memory the module defines, in 64 KiB pages. */
  memoryMinPages: number;
  functions: number;
  /** With `splitData`, when the data could be split off. */
  image?: MemoryImage;
  /** Whether instantiation still writes data segments (data that was not split off). */
  keepsData: boolean;
  /** Whether the module has mutable globals the host cannot read (not exported: no snapshot). */
  opaqueGlobals: boolean;
}

export interface MeterExports {
  fuel: string;
  memoryLimit: string;
  memoryRefused: string;
  /** Where the memory image goes, for a module whose data was split off. */
  memory?: string;
  /**
   * The module's own mutable globals, exported under these names so a
   * snapshot can read and restore them (runtime/snapshot.ts); absent when
   * one of them is not an integer (JS cannot read a v128 or reference
   * global; a float's NaN or infinity would not survive the record).
   */
  globals?: string[];
  /** The module's own tables, exported so a snapshot can check init left them as they were. */
  tables?: string[];
  /**
   * With `deferStart`, the module's start function, exported under this name
   * instead of run by instantiation: the host calls it once it has set the
   * instance's fuel and memory limits.
   */
  start?: string;
}

const SECTION_ORDER: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};

interface Section {
  id: number;
  start: number;
  end: number;
}

interface ModuleInfo {
  sections: Section[];
  paramCounts: number[];
  importedFunctions: number;
  importedGlobals: number;
  definedGlobals: number;
  /** Defined mutable globals (absolute indices) and whether JS can read and write each (numbers only). */
  mutableGlobals: Array<{ index: number; numeric: boolean }>;
  importedTables: number;
  functionTypes: number[];
  exportNames: Set<string>;
  types: IndexTypes;
  memoryMinPages: number;
  hasStart: boolean;
  startFunction: number;
  importedMemories: number;
  definedMemories: number;
  /** The data segments, when all are active at constant offsets in memory 0; else undefined. */
  activeData: MemoryImage | undefined;
  /** Whether any data section exists at all. */
  hasData: boolean;
}

/** Reads limits and returns whether they describe a 64-bit memory or table. */
function skipLimits(r: Reader): boolean {
  const flags = r.byte();
  const is64 = (flags & 0x04) !== 0;
  r.skipLeb(is64 ? 10 : 5);
  if (flags & 0x01) r.skipLeb(is64 ? 10 : 5);
  return is64;
}

function readTableType(r: Reader): boolean {
  skipValtype(r);
  return skipLimits(r);
}

function skipConstExpr(r: Reader): void {
  const types: IndexTypes = { memory64: [], table64: [] };
  for (;;) {
    if (r.peek() === 0x0b) {
      r.pos++;
      return;
    }
    decode(r, types);
  }
}

function scan(bytes: Uint8Array): ModuleInfo {
  const r = new Reader(bytes);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const b of magic) {
    if (r.byte() !== b) throw new FuelError("malformed", "not a core WebAssembly module (version 1)");
  }
  const info: ModuleInfo = {
    sections: [],
    paramCounts: [],
    importedFunctions: 0,
    importedGlobals: 0,
    definedGlobals: 0,
    mutableGlobals: [],
    importedTables: 0,
    functionTypes: [],
    exportNames: new Set(),
    types: { memory64: [], table64: [] },
    memoryMinPages: 0,
    hasStart: false,
    startFunction: 0,
    importedMemories: 0,
    definedMemories: 0,
    activeData: undefined,
    hasData: false,
  };
  let lastOrder = 0;
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > bytes.length) throw new FuelError("malformed", `section ${id} runs past the end of the module`);
    if (id !== 0) {
      const order = SECTION_ORDER[id];
      if (order === undefined) throw new FuelError("unsupported", `unknown section ${id}`);
      if (order <= lastOrder) throw new FuelError("malformed", `section ${id} out of order`);
      lastOrder = order;
    }
    info.sections.push({ id, start, end });
    const s = new Reader(bytes, start, end);
    switch (id) {
      case 1: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const form = s.byte();
          if (form !== 0x60)
            throw new FuelError("unsupported", `type form 0x${form.toString(16)}: GC types are not metered yet`);
          const params = s.u32();
          for (let p = 0; p < params; p++) skipValtype(s);
          const results = s.u32();
          for (let p = 0; p < results; p++) skipValtype(s);
          info.paramCounts.push(params);
        }
        break;
      }
      case 2: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          s.name();
          s.name();
          const kind = s.byte();
          if (kind === 0x00) {
            s.u32();
            info.importedFunctions++;
          } else if (kind === 0x01) {
            info.types.table64.push(readTableType(s));
            info.importedTables++;
          } else if (kind === 0x02) {
            info.types.memory64.push(skipLimits(s));
            info.importedMemories++;
          } else if (kind === 0x03) {
            skipValtype(s);
            s.byte();
            info.importedGlobals++;
          } else if (kind === 0x04) {
            s.byte();
            s.u32();
          } else throw new FuelError("malformed", `import kind ${kind}`);
        }
        break;
      }
      case 3: {
        const n = s.u32();
        for (let i = 0; i < n; i++) info.functionTypes.push(s.u32());
        break;
      }
      case 4: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          if (s.peek() === 0x40) {
            s.byte();
            s.byte(); // 0x40 0x00: a table with an initializer
            info.types.table64.push(readTableType(s));
            skipConstExpr(s);
          } else info.types.table64.push(readTableType(s));
        }
        break;
      }
      case 5: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const at = s.pos;
          const flags = s.byte();
          const min = flags & 0x04 ? Number(s.s64() & 0xffffffffffffffffn) : s.u32();
          info.memoryMinPages = Math.max(info.memoryMinPages, min);
          s.pos = at;
          info.types.memory64.push(skipLimits(s));
          info.definedMemories++;
        }
        break;
      }
      case 8:
        info.hasStart = true;
        info.startFunction = s.u32();
        break;
      case 11:
        info.hasData = true;
        info.activeData = readActiveData(s, bytes);
        break;
      case 6:
        info.definedGlobals = s.u32();
        for (let i = 0; i < info.definedGlobals; i++) {
          const type = s.peek();
          skipValtype(s);
          if (s.byte() === 1) {
            info.mutableGlobals.push({ index: info.importedGlobals + i, numeric: type === 0x7f || type === 0x7e });
          }
          skipConstExpr(s);
        }
        break;
      case 7: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          info.exportNames.add(s.name());
          s.byte();
          s.u32();
        }
        break;
      }
    }
    r.pos = end;
  }
  return info;
}

/** Reads a data section whose segments are all active at i32.const offsets in memory 0; else undefined. */
function readActiveData(s: Reader, bytes: Uint8Array): MemoryImage | undefined {
  const segments: MemoryImage["segments"] = [];
  const n = s.u32();
  for (let i = 0; i < n; i++) {
    const flags = s.u32();
    if (flags === 2 && s.u32() !== 0) return undefined;
    if (flags !== 0 && flags !== 2) return undefined; // passive
    if (s.byte() !== 0x41) return undefined; // only i32.const offsets
    const offset = Number(s.s64());
    if (s.byte() !== 0x0b || offset < 0) return undefined;
    const length = s.u32();
    const start = s.pos;
    s.skip(length);
    segments.push({ offset, bytes: bytes.subarray(start, start + length) });
  }
  return { segments };
}

function chooseExportName(taken: Set<string>, wanted: string): string {
  let name = wanted;
  for (let i = 1; taken.has(name); i++) name = `${wanted}.${i}`;
  taken.add(name);
  return name;
}

/*
 * Code emitted into function bodies. Fuel lives in a local `L` while a
 * function runs (TurboFan keeps it in a register); the global `F` is the
 * truth between functions. F is loaded into L at entry and after calls,
 * and L stored to F before calls, returns and traps and at loop headers, so
 * a trap loses at most the current loop iteration's charges, and never
 * charges more.
 */

function emitGet(w: Writer, op: 0x20 | 0x21 | 0x23 | 0x24, index: number): void {
  w.byte(op);
  w.u32(index);
}

/** L -= cost */
function charge(w: Writer, local: number, cost: number): void {
  emitGet(w, 0x20, local);
  w.byte(0x42); // i64.const
  w.s64(BigInt(cost));
  w.byte(0x7d); // i64.sub
  emitGet(w, 0x21, local);
}

/** F = L */
function store(w: Writer, local: number, fuel: number): void {
  emitGet(w, 0x20, local);
  emitGet(w, 0x24, fuel);
}

/** L = F */
function load(w: Writer, local: number, fuel: number): void {
  emitGet(w, 0x23, fuel);
  emitGet(w, 0x21, local);
}

/**
 * L = min(L, F), where an exception may land: arriving normally L is the
 * lower (it holds this frame's unstored charges); arriving from a throw in a
 * callee F is (the callee charged it after L was stored).
 */
function land(w: Writer, local: number, fuel: number): void {
  emitGet(w, 0x20, local);
  emitGet(w, 0x23, fuel);
  emitGet(w, 0x20, local);
  emitGet(w, 0x23, fuel);
  w.byte(0x53); // i64.lt_s
  w.byte(0x1b); // select
  emitGet(w, 0x21, local);
}

/** if L < 0 { F = L; trap } */
function check(w: Writer, local: number, fuel: number): void {
  emitGet(w, 0x20, local);
  w.byte(0x42);
  w.byte(0x00);
  w.byte(0x53); // i64.lt_s
  w.byte(0x04); // if
  w.byte(0x40);
  store(w, local, fuel);
  w.byte(0x00); // unreachable
  w.byte(0x0b); // end
}

/**
 * Charges an amount taken from the operand on top of the stack (kept in a
 * scratch local and pushed back), then checks.
 */
function chargeOperand(
  w: Writer,
  local: number,
  fuel: number,
  scratch: number,
  is64: boolean,
  scale: "pages" | "bytes" | "elements",
): void {
  emitGet(w, 0x21, scratch);
  emitGet(w, 0x20, local);
  if (is64) {
    // An i64 operand is unsigned here: a huge ("negative") one must not wrap the charge into a
    // credit. Anything past OPERAND_CAP is charged as OPERAND_CAP, which exhausts any budget.
    w.byte(0x42);
    w.s64(OPERAND_CAP);
    emitGet(w, 0x20, scratch);
    emitGet(w, 0x20, scratch);
    w.byte(0x42);
    w.s64(OPERAND_CAP);
    w.byte(0x56); // i64.gt_u
    w.byte(0x1b); // select: the cap when n >u cap, else n
  } else {
    emitGet(w, 0x20, scratch);
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
  emitGet(w, 0x21, local);
  check(w, local, fuel);
  emitGet(w, 0x20, scratch);
}

const CALLS = new Set([0x10, 0x11, 0x14]);
/** Leave the function (or may): L must be in F first. */
const EXITS = new Set([0x00, 0x08, 0x09, 0x0a, 0x0f, 0x12, 0x13, 0x15]);
const BRANCHES = new Set([0x0c, 0x0d, 0x0e, 0xd5, 0xd6]);
const OPENS = new Set([0x02, 0x03, 0x04, 0x06, 0x1f]);

interface Globals {
  fuel: number;
  memoryLimit: number;
  memoryRefused: number;
}

/**
 * Pushes whether growing memory/table `index` by the operand in `scratch`
 * would pass `limit` (an i64 from `pushLimit`), as an i32 condition.
 */
function emitOverLimit(
  w: Writer,
  sizeOp: number[],
  index: number,
  scratch: number,
  is64: boolean,
  pushLimit: () => void,
) {
  const size = () => {
    for (const b of sizeOp) w.byte(b);
    w.u32(index);
    if (!is64) w.byte(0xad);
  };
  // size >u limit, or n >u limit - size: never `size + n`, which a huge n wraps.
  size();
  pushLimit();
  w.byte(0x56); // i64.gt_u
  emitGet(w, 0x20, scratch);
  if (!is64) w.byte(0xad);
  pushLimit();
  size();
  w.byte(0x7d); // i64.sub
  w.byte(0x56); // i64.gt_u
  w.byte(0x72); // i32.or
}

/** Replaces the grow's operand with one it cannot satisfy (so it returns -1) when it would pass the limit. */
function emitBoundedGrow(w: Writer, scratch: number, is64: boolean, over: () => void, growOp: number[], index: number) {
  if (is64) {
    w.byte(0x42);
    w.s64(-1n);
  } else {
    w.byte(0x41);
    w.s64(-1n);
  }
  emitGet(w, 0x20, scratch);
  over();
  w.byte(0x1b); // select
  for (const b of growOp) w.byte(b);
  w.u32(index);
}

function instrumentBody(
  bytes: Uint8Array,
  start: number,
  end: number,
  params: number,
  globals: Globals,
  types: IndexTypes,
  out: Writer,
): void {
  const fuel = globals.fuel;
  const r = new Reader(bytes, start, end);
  const declCount = r.u32();
  let locals = params;
  for (let i = 0; i < declCount; i++) {
    const count = r.u32();
    skipValtype(r);
    locals += count;
  }
  if (locals > 50_000) throw new FuelError("unsupported", `a function with ${locals} locals`);
  const declsEnd = r.pos;
  const L = locals;
  const scratch32 = locals + 1;
  const scratch64 = locals + 2;

  const code = new Writer(Math.ceil((end - start) * 1.4) + 64);
  load(code, L, fuel);
  let segStart = r.pos;
  let segCost = 0;
  let segCheck = true; // function entry
  let segLoop = false;
  let segLand = false;
  /** Open blocks, innermost last: true where an exception from try_table lands at its end. */
  const blocks: boolean[] = [];
  /** Which open blocks are loops (a catch may not land at a loop header). */
  const loops: boolean[] = [];

  const begin = () => {
    if (segLand) land(code, L, fuel);
    if (segCost > 0) charge(code, L, segCost);
    if (segLoop) store(code, L, fuel);
    if (segCheck) check(code, L, fuel);
  };
  const next = (check: boolean, loop: boolean, landing: boolean) => {
    segStart = r.pos;
    segCost = 0;
    segCheck = check;
    segLoop = loop;
    segLand = landing;
  };

  for (;;) {
    if (r.pos >= end) throw new FuelError("malformed", "function body ends without `end`");
    const opStart = r.pos;
    const op = bytes[opStart] as number;
    const effect = decode(r, types);
    segCost++;
    if (effect === STRAIGHT) {
      if (op === 0x02) {
        blocks.push(false);
        loops.push(false);
      }
      continue;
    }

    let flush = CALLS.has(op) || EXITS.has(op);
    let landing = op === 0x07 || op === 0x19; // catch, catch_all
    let last = false;
    if (OPENS.has(op)) {
      if (op === 0x1f) {
        for (const label of branch.catches) {
          const target = blocks.length - 1 - label;
          if (target < 0) continue; // lands at the function's end: it returns
          if (loops[target]) throw new FuelError("unsupported", "a try_table catch that branches to a loop");
          blocks[target] = true;
        }
      }
      blocks.push(false);
      loops.push(op === 0x03);
    } else if (op === 0x0b || op === 0x18) {
      if (blocks.length === 0) {
        if (op === 0x18) throw new FuelError("malformed", "delegate outside a try");
        last = true;
        flush = true;
      } else {
        landing = blocks.pop() === true;
        loops.pop();
      }
    } else if (BRANCHES.has(op)) {
      flush = branch.labels.some((label) => label >= blocks.length);
    }

    if (effect === ENDS || effect === LOOP) {
      begin();
      if (flush) {
        code.bytes(bytes.subarray(segStart, opStart));
        store(code, L, fuel);
        code.bytes(bytes.subarray(opStart, r.pos));
      } else {
        code.bytes(bytes.subarray(segStart, r.pos));
      }
      if (last) break;
      const reload = CALLS.has(op);
      next(effect === LOOP, effect === LOOP, landing);
      if (reload) load(code, L, fuel);
      continue;
    }
    // A dynamically charged operation: the segment up to it, then its own charge, then it.
    begin();
    code.bytes(bytes.subarray(segStart, opStart));
    const { is64, index } = operand;
    const scratch = is64 ? scratch64 : scratch32;
    chargeOperand(
      code,
      L,
      fuel,
      scratch,
      is64,
      effect === GROW ? "pages" : effect === BULK_MEMORY ? "bytes" : "elements",
    );
    if (effect === GROW) {
      // memory.grow: refused past the instance's limit, and the refusal flagged for the host.
      const over = () =>
        emitOverLimit(code, [0x3f], index, scratch, is64, () => emitGet(code, 0x23, globals.memoryLimit));
      emitGet(code, 0x21, scratch);
      emitGet(code, 0x23, globals.memoryRefused);
      over();
      code.byte(0x72); // i32.or
      emitGet(code, 0x24, globals.memoryRefused);
      emitBoundedGrow(code, scratch, is64, over, [0x40], index);
    } else if (effect === TABLE_GROW) {
      emitGet(code, 0x21, scratch);
      emitBoundedGrow(
        code,
        scratch,
        is64,
        () =>
          emitOverLimit(code, [0xfc, 16], index, scratch, is64, () => {
            code.byte(0x42);
            code.s64(MAX_TABLE_ELEMENTS);
          }),
        [0xfc, 15],
        index,
      );
    } else {
      code.bytes(bytes.subarray(opStart, r.pos));
    }
    next(false, false, false);
  }
  if (r.pos !== end) throw new FuelError("malformed", "bytes after a function's final `end`");

  const body = new Writer(code.length + (declsEnd - start) + 16);
  body.u32(declCount + 3);
  body.bytes(bytes.subarray(start + leb32Length(bytes, start), declsEnd));
  body.u32(1);
  body.byte(0x7e); // L: i64
  body.u32(1);
  body.byte(0x7f); // i32 scratch
  body.u32(1);
  body.byte(0x7e); // i64 scratch
  body.bytes(code.result());
  out.sized(body);
}

function leb32Length(bytes: Uint8Array, at: number): number {
  let n = 1;
  while ((bytes[at + n - 1] as number) & 0x80) n++;
  return n;
}

function writeSection(out: Writer, id: number, payload: Writer): void {
  out.byte(id);
  out.sized(payload);
}

export function instrument(input: Uint8Array, options: InstrumentOptions): InstrumentResult {
  const info = scan(input);
  const fuel = info.importedGlobals + info.definedGlobals;
  const globals: Globals = { fuel, memoryLimit: fuel + 1, memoryRefused: fuel + 2 };
  const taken = new Set(info.exportNames);
  const exports: MeterExports = {
    fuel: chooseExportName(taken, FUEL_EXPORT),
    memoryLimit: chooseExportName(taken, MEMORY_LIMIT_EXPORT),
    memoryRefused: chooseExportName(taken, MEMORY_REFUSED_EXPORT),
  };
  // The code first: whether it uses its data segments decides whether the data can be split off.
  seen.dataSegmentOps = false;
  let functions = 0;
  const codeSection = info.sections.find((s) => s.id === 10);
  let code: Writer | undefined;
  if (codeSection) {
    const r = new Reader(input, codeSection.start, codeSection.end);
    const count = r.u32();
    if (count !== info.functionTypes.length) throw new FuelError("malformed", "function and code sections disagree");
    code = new Writer(Math.ceil((codeSection.end - codeSection.start) * 1.3) + 16);
    code.u32(count);
    for (let i = 0; i < count; i++) {
      const size = r.u32();
      const bodyStart = r.pos;
      const params = info.paramCounts[info.functionTypes[i] as number];
      if (params === undefined) throw new FuelError("malformed", `function ${i} has an unknown type`);
      instrumentBody(input, bodyStart, bodyStart + size, params, globals, info.types, code);
      r.pos = bodyStart + size;
      functions++;
    }
  } else if (info.functionTypes.length > 0) throw new FuelError("malformed", "functions without a code section");
  // A memory of its own with no data at all gets an empty image: the host can still write a snapshot into it.
  const data = info.hasData ? info.activeData : { segments: [] };
  const image =
    options.splitData &&
    data &&
    !info.hasStart &&
    info.importedMemories === 0 &&
    info.definedMemories > 0 &&
    !seen.dataSegmentOps
      ? data
      : undefined;
  if (image) exports.memory = chooseExportName(taken, MEMORY_EXPORT);
  if (options.deferStart && info.hasStart) exports.start = chooseExportName(taken, START_EXPORT);
  const ownGlobals = info.mutableGlobals;
  if (options.splitData && ownGlobals.length > 0 && ownGlobals.every((g) => g.numeric)) {
    exports.globals = ownGlobals.map((g) => chooseExportName(taken, `${GLOBAL_EXPORT_PREFIX}${g.index}`));
  }
  // Defined tables too, so a snapshot can tell whether init changed one.
  const ownTables = options.splitData
    ? Array.from({ length: info.types.table64.length - info.importedTables }, (_, i) => info.importedTables + i)
    : [];
  if (ownTables.length > 0) {
    exports.tables = ownTables.map((index) => chooseExportName(taken, `${TABLE_EXPORT_PREFIX}${index}`));
  }
  const added =
    3 +
    (exports.memory ? 1 : 0) +
    (exports.start ? 1 : 0) +
    (exports.globals ? exports.globals.length : 0) +
    ownTables.length;
  const out = new Writer(Math.ceil(input.length * 1.25) + 1024);
  out.bytes(input.subarray(0, 8));

  const globalSection = () => {
    const w = new Writer(64);
    const existing = info.sections.find((s) => s.id === 6);
    if (existing) {
      const r = new Reader(input, existing.start, existing.end);
      w.u32(r.u32() + 3);
      w.bytes(input.subarray(r.pos, existing.end));
    } else w.u32(3);
    for (const [type, init] of [
      [0x7e, options.initialFuel],
      [0x7e, DEFAULT_MEMORY_LIMIT_PAGES],
      [0x7f, 0n],
    ] as const) {
      w.byte(type);
      w.byte(0x01); // mutable
      w.byte(type === 0x7e ? 0x42 : 0x41); // i64.const / i32.const
      w.s64(init);
      w.byte(0x0b);
    }
    writeSection(out, 6, w);
  };
  const exportSection = () => {
    const w = new Writer(64);
    const existing = info.sections.find((s) => s.id === 7);
    if (existing) {
      const r = new Reader(input, existing.start, existing.end);
      w.u32(r.u32() + added);
      w.bytes(input.subarray(r.pos, existing.end));
    } else w.u32(added);
    for (const [name, index] of [
      [exports.fuel, globals.fuel],
      [exports.memoryLimit, globals.memoryLimit],
      [exports.memoryRefused, globals.memoryRefused],
    ] as const) {
      w.name(name);
      w.byte(0x03);
      w.u32(index);
    }
    if (exports.memory) {
      w.name(exports.memory);
      w.byte(0x02);
      w.u32(0);
    }
    if (exports.start) {
      w.name(exports.start);
      w.byte(0x00);
      w.u32(info.startFunction);
    }
    ownTables.forEach((index, i) => {
      const name = exports.tables?.[i];
      if (name === undefined) return;
      w.name(name);
      w.byte(0x01);
      w.u32(index);
    });
    ownGlobals.forEach((global, i) => {
      const name = exports.globals?.[i];
      if (name === undefined) return;
      w.name(name);
      w.byte(0x03);
      w.u32(global.index);
    });
    writeSection(out, 7, w);
  };

  let wroteGlobals = false;
  let wroteExports = false;
  for (const section of info.sections) {
    const order = SECTION_ORDER[section.id] ?? 0;
    if (section.id !== 0) {
      if (!wroteGlobals && order >= (SECTION_ORDER[6] as number)) {
        globalSection();
        wroteGlobals = true;
      }
      if (!wroteExports && order >= (SECTION_ORDER[7] as number)) {
        exportSection();
        wroteExports = true;
      }
    }
    if (section.id === 6 || section.id === 7) continue;
    // The data goes into the image; with no memory.init/data.drop the data count is not needed either.
    if (image && (section.id === 11 || section.id === 12)) continue;
    if (exports.start && section.id === 8) continue;
    if (section.id !== 10) {
      out.byte(section.id);
      out.u32(section.end - section.start);
      out.bytes(input.subarray(section.start, section.end));
      continue;
    }
    writeSection(out, 10, code as Writer);
  }
  if (!wroteGlobals) globalSection();
  if (!wroteExports) exportSection();
  const result: InstrumentResult = {
    bytes: out.result().slice(),
    exports,
    memoryMinPages: info.memoryMinPages,
    functions,
    keepsData: info.hasData && !image,
    opaqueGlobals: ownGlobals.length > 0 && !exports.globals,
  };
  if (image) result.image = { segments: image.segments.map(({ offset, bytes }) => ({ offset, bytes: bytes.slice() })) };
  return result;
}
