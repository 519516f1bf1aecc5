/**
 * Reads what the instrumenter needs to know of a core module before it
 * rewrites it: where each section is, the function types and how many
 * functions, globals, tables and memories are imported and defined, the
 * module's exports, start function and data. Anything it cannot decode is
 * refused with a FuelError.
 */
import { Reader } from "./bytes.ts";
import { FuelError } from "./fuel-error.ts";
import { decode, type IndexTypes, skipValtype } from "./instructions.ts";
import type { MemoryImage } from "./instrument.ts";

/** The import module of the host's fuel imports (runtime/fuel-meter.ts); a module may not import from it itself. */
export const REFILL_MODULE = "joule:fuel";
export const REFILL_NAME = "refill";
/** The shared counter and reserve globals, imported from REFILL_MODULE. */
export const SHARED_FUEL_NAME = "fuel";
export const RESERVE_NAME = "reserve";

export const SECTION_ORDER: Record<number, number> = {
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

export interface Section {
  id: number;
  start: number;
  end: number;
}

/** A function type's parameter and result value types, as byte ranges of the type section. */
export interface FunctionType {
  params: number;
  results: number;
  paramBytes: [number, number];
  resultBytes: [number, number];
}

export interface ModuleInfo {
  sections: Section[];
  types: FunctionType[];
  importedFunctions: number;
  importedGlobals: number;
  definedGlobals: number;
  /** Defined mutable globals (absolute indices) and whether JS can read and write each (numbers only). */
  mutableGlobals: Array<{ index: number; numeric: boolean }>;
  importedTables: number;
  functionTypes: number[];
  exportNames: Set<string>;
  indexTypes: IndexTypes;
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

export function skipConstExpr(r: Reader): void {
  const types: IndexTypes = { memory64: [], table64: [] };
  for (;;) {
    if (r.peek() === 0x0b) {
      r.pos++;
      return;
    }
    decode(r, types);
  }
}

export function scan(bytes: Uint8Array): ModuleInfo {
  const r = new Reader(bytes);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const b of magic) {
    if (r.byte() !== b) throw new FuelError("malformed", "not a core WebAssembly module (version 1)");
  }
  const info: ModuleInfo = {
    sections: [],
    types: [],
    importedFunctions: 0,
    importedGlobals: 0,
    definedGlobals: 0,
    mutableGlobals: [],
    importedTables: 0,
    functionTypes: [],
    exportNames: new Set(),
    indexTypes: { memory64: [], table64: [] },
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
          const paramsStart = s.pos;
          for (let p = 0; p < params; p++) skipValtype(s);
          const paramsEnd = s.pos;
          const results = s.u32();
          const resultsStart = s.pos;
          for (let p = 0; p < results; p++) skipValtype(s);
          info.types.push({
            params,
            results,
            paramBytes: [paramsStart, paramsEnd],
            resultBytes: [resultsStart, s.pos],
          });
        }
        break;
      }
      case 2: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const module = s.name();
          s.name();
          // The refill import is the host's: a module that names it itself could be handed the meter.
          if (module === REFILL_MODULE) throw new FuelError("unsupported", `an import from "${REFILL_MODULE}"`);
          const kind = s.byte();
          if (kind === 0x00) {
            s.u32();
            info.importedFunctions++;
          } else if (kind === 0x01) {
            info.indexTypes.table64.push(readTableType(s));
            info.importedTables++;
          } else if (kind === 0x02) {
            info.indexTypes.memory64.push(skipLimits(s));
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
            info.indexTypes.table64.push(readTableType(s));
            skipConstExpr(s);
          } else info.indexTypes.table64.push(readTableType(s));
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
          info.indexTypes.memory64.push(skipLimits(s));
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
