/**
 * The fuel instrumenter: a streaming rewriter of core WebAssembly modules.
 *
 * It adds three imports from `joule:fuel`, which the host provides once per
 * component instance so that all its core modules share them
 * (runtime/fuel-meter.ts): `fuel`, a mutable i64 global, the counter the
 * code charges (re-exported as `joule:fuel`, or with a suffix if the module
 * already exports that name); `reserve`, a mutable i64 global, the rest of
 * the invocation's budget; and `refill` ([] -> []), which the entry of a
 * function that calls invokes when the counter went below zero: the host
 * moves the next slice from the reserve into the counter, or nothing when
 * the budget is gone, and then the code traps. Loop headers and dynamic
 * charges take the next slice from the reserve themselves (emit.ts, draw).
 * So one budget holds across all the core modules of a component, and
 * since the host reads the counter after a call, it is exact: a run whose
 * last segments overdrew it fails even if no check was reached.
 *
 * The imports come after the module's own: every defined function's index
 * moves up by one and every defined global's by two, so calls, `ref.func`,
 * `global.get`/`global.set`, initializers, element segments, exports, the
 * start function and the name section are rewritten (index-shift.ts).
 * Each function body is instrumented by body.ts, most into a "twin" that
 * passes fuel in a register on direct calls; costs are in costs.ts.
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

import { type BodyFacts, instrumentBody, type Layout, wrapperBody } from "./body.ts";
import { Reader, Writer } from "./bytes.ts";
import { SLICE } from "./costs.ts";
import { FuelError } from "./fuel-error.ts";
import {
  ADDED_GLOBAL_IMPORTS,
  rewriteData,
  rewriteElements,
  rewriteGlobals,
  rewriteNames,
  rewriteTables,
  type Shift,
  shiftFunction,
  shiftGlobal,
} from "./index-shift.ts";
import { seen } from "./instructions.ts";
import {
  type ModuleInfo,
  REFILL_MODULE,
  REFILL_NAME,
  RESERVE_NAME,
  SECTION_ORDER,
  SHARED_FUEL_NAME,
  scan,
} from "./module-info.ts";

export { GROW_PAGE_COST, MAX_TABLE_ELEMENTS, SLICE } from "./costs.ts";
export { REFILL_MODULE, REFILL_NAME, RESERVE_NAME, SHARED_FUEL_NAME } from "./module-info.ts";

export const FUEL_EXPORT = "joule:fuel";
export const MEMORY_LIMIT_EXPORT = "joule:memory-limit";
export const MEMORY_REFUSED_EXPORT = "joule:memory-refused";
/** The memory limit a module starts with (pages): 4 GiB, until the host sets its own. */
const DEFAULT_MEMORY_LIMIT_PAGES = 65536n;

export interface InstrumentOptions {
  /** What loop headers take from the reserve at a time: SLICE, unless a measurement wants another. */
  slice?: bigint;
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

function chooseExportName(taken: Set<string>, wanted: string): string {
  let name = wanted;
  for (let i = 1; taken.has(name); i++) name = `${wanted}.${i}`;
  taken.add(name);
  return name;
}

function writeSection(out: Writer, id: number, payload: Writer): void {
  out.byte(id);
  out.sized(payload);
}

/** A custom section's name and where its payload starts. */
function customName(input: Uint8Array, start: number, end: number): { name: string; payload: number } {
  const r = new Reader(input, start, end);
  const name = r.name();
  return { name, payload: r.pos };
}

/**
 * Types the rewrite adds after the module's own: refill's [] -> [], and per
 * type of a defined function its twin's (params, i64) -> (results, i64),
 * plus [] -> (results) where a twin's body block needs a type index.
 */
interface AddedTypes {
  payload: Writer;
  count: number;
  refill: number;
  twin: Map<number, number>;
  block: Map<number, Uint8Array>;
}

function addTypes(input: Uint8Array, info: ModuleInfo): AddedTypes {
  const payload = new Writer(256);
  let next = info.types.length;
  const added: AddedTypes = { payload, count: 0, refill: next, twin: new Map(), block: new Map() };
  const push = (write: () => void) => {
    write();
    added.count++;
    return next++;
  };
  push(() => {
    payload.byte(0x60);
    payload.u32(0);
    payload.u32(0);
  });
  for (const t of new Set(info.functionTypes)) {
    const type = info.types[t];
    if (!type) throw new FuelError("malformed", `a function of unknown type ${t}`);
    const params = input.subarray(...type.paramBytes);
    const results = input.subarray(...type.resultBytes);
    added.twin.set(
      t,
      push(() => {
        payload.byte(0x60);
        payload.u32(type.params + 1);
        payload.bytes(params);
        payload.byte(0x7e);
        payload.u32(type.results + 1);
        payload.bytes(results);
        payload.byte(0x7e);
      }),
    );
    if (type.results === 0) added.block.set(t, Uint8Array.of(0x40));
    else if (type.results === 1) added.block.set(t, results.slice());
    else {
      const index = push(() => {
        payload.byte(0x60);
        payload.u32(0);
        payload.u32(type.results);
        payload.bytes(results);
      });
      const w = new Writer(8);
      w.s64(BigInt(index)); // a block type index is a positive s33
      added.block.set(t, w.result().slice());
    }
  }
  return added;
}

/** Twin indices: every defined function but those in `classic`, numbered after the defined ones. */
function assignTwins(info: ModuleInfo, classic: Set<number>): Int32Array {
  const defined = info.functionTypes.length;
  const twins = new Int32Array(defined);
  let next = info.importedFunctions + 1 + defined;
  for (let k = 0; k < defined; k++) twins[k] = classic.has(k) ? -1 : next++;
  return twins;
}

/**
 * The functions that must stay classic: those with a tail call a twin
 * cannot make, and, until nothing changes, those that tail-call one of them.
 */
function classicFunctions(facts: BodyFacts[]): Set<number> {
  const classic = new Set<number>();
  facts.forEach((f, k) => {
    if (f.blocksTwin) classic.add(k);
  });
  for (let changed = classic.size > 0; changed; ) {
    changed = false;
    facts.forEach((f, k) => {
      if (!classic.has(k) && f.tailCalls.some((callee) => classic.has(callee))) {
        classic.add(k);
        changed = true;
      }
    });
  }
  return classic;
}

interface Code {
  section: Writer;
  twins: Int32Array;
}

function instrumentCode(input: Uint8Array, info: ModuleInfo, layout: Omit<Layout, "twins">, types: AddedTypes): Code {
  const codeSection = info.sections.find((s) => s.id === 10);
  const defined = info.functionTypes.length;
  if (!codeSection) {
    if (defined > 0) throw new FuelError("malformed", "functions without a code section");
    return { section: new Writer(1), twins: new Int32Array(0) };
  }
  const run = (classic: Set<number>) => {
    const twins = assignTwins(info, classic);
    const full: Layout = { ...layout, twins };
    const r = new Reader(input, codeSection.start, codeSection.end);
    if (r.u32() !== defined) throw new FuelError("malformed", "function and code sections disagree");
    const section = new Writer(Math.ceil((codeSection.end - codeSection.start) * 1.5) + 16);
    const twinBodies = new Writer(Math.ceil((codeSection.end - codeSection.start) * 1.4) + 16);
    const facts: BodyFacts[] = [];
    let twinCount = 0;
    for (let k = 0; k < defined; k++) {
      const size = r.u32();
      const bodyStart = r.pos;
      const t = info.functionTypes[k] as number;
      const params = (info.types[t] as { params: number }).params;
      const twin = (twins[k] as number) >= 0;
      if (twin) {
        wrapperBody(params, twins[k] as number, layout.fuel, section);
        facts.push(
          instrumentBody(
            input,
            bodyStart,
            bodyStart + size,
            { params, twin, resultsBlockType: types.block.get(t) as Uint8Array },
            full,
            twinBodies,
          ),
        );
        twinCount++;
      } else facts.push(instrumentBody(input, bodyStart, bodyStart + size, { params, twin }, full, section));
      r.pos = bodyStart + size;
    }
    const out = new Writer(section.length + twinBodies.length + 8);
    out.u32(defined + twinCount);
    out.bytes(section.result());
    out.bytes(twinBodies.result());
    return { section: out, twins, facts };
  };
  // Optimistic: every function a twin. Only a module with tail calls a twin cannot make takes a second pass.
  const first = run(new Set());
  const classic = classicFunctions(first.facts);
  if (classic.size === 0) return first;
  return run(classic);
}

export function instrument(input: Uint8Array, options: InstrumentOptions = {}): InstrumentResult {
  const info = scan(input);
  const imported = info.importedFunctions;
  const shift: Shift = { functions: imported, globals: info.importedGlobals };
  const fuel = info.importedGlobals;
  const own = info.importedGlobals + ADDED_GLOBAL_IMPORTS + info.definedGlobals;
  const layout = {
    importedFunctions: imported,
    importedGlobals: info.importedGlobals,
    slice: options.slice ?? SLICE,
    fuel,
    reserve: fuel + 1,
    memoryLimit: own,
    memoryRefused: own + 1,
  };
  const taken = new Set(info.exportNames);
  const exports: MeterExports = {
    fuel: chooseExportName(taken, FUEL_EXPORT),
    memoryLimit: chooseExportName(taken, MEMORY_LIMIT_EXPORT),
    memoryRefused: chooseExportName(taken, MEMORY_REFUSED_EXPORT),
  };
  const types = addTypes(input, info);
  // The code first: whether it uses its data segments decides whether the data can be split off.
  seen.dataSegmentOps = false;
  const code = instrumentCode(input, info, { ...layout, indexTypes: info.indexTypes }, types);
  const twins = code.twins;
  const functions = info.functionTypes.length;
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
    ? Array.from({ length: info.indexTypes.table64.length - info.importedTables }, (_, i) => info.importedTables + i)
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
  const out = new Writer(Math.ceil(input.length * 1.3) + 1024);
  out.bytes(input.subarray(0, 8));
  const section = (id: number) => info.sections.find((s) => s.id === id);

  const typeSection = () => {
    const w = new Writer(64);
    const existing = section(1);
    if (existing) {
      const r = new Reader(input, existing.start, existing.end);
      w.u32(r.u32() + types.count);
      w.bytes(input.subarray(r.pos, existing.end));
    } else w.u32(types.count);
    w.bytes(types.payload.result());
    writeSection(out, 1, w);
  };
  const importSection = () => {
    const w = new Writer(64);
    const existing = section(2);
    if (existing) {
      const r = new Reader(input, existing.start, existing.end);
      w.u32(r.u32() + 1 + ADDED_GLOBAL_IMPORTS);
      w.bytes(input.subarray(r.pos, existing.end));
    } else w.u32(1 + ADDED_GLOBAL_IMPORTS);
    w.name(REFILL_MODULE);
    w.name(REFILL_NAME);
    w.byte(0x00);
    w.u32(types.refill);
    for (const name of [SHARED_FUEL_NAME, RESERVE_NAME]) {
      w.name(REFILL_MODULE);
      w.name(name);
      w.byte(0x03);
      w.byte(0x7e);
      w.byte(0x01); // mutable
    }
    writeSection(out, 2, w);
  };
  const functionSection = () => {
    const w = new Writer(16 + functions * 4);
    let count = functions;
    for (const twin of twins) if (twin >= 0) count++;
    w.u32(count);
    for (const t of info.functionTypes) w.u32(t);
    info.functionTypes.forEach((t, k) => {
      if ((twins[k] as number) >= 0) w.u32(types.twin.get(t) as number);
    });
    writeSection(out, 3, w);
  };
  const globalSection = () => {
    const w = new Writer(64);
    const existing = section(6);
    if (existing) {
      w.u32(info.definedGlobals + 2);
      w.bytes(rewriteGlobals(input, existing.start, existing.end, shift).result());
    } else w.u32(2);
    for (const [type, init] of [
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
    const existing = section(7);
    if (existing) {
      const r = new Reader(input, existing.start, existing.end);
      const n = r.u32();
      w.u32(n + added);
      for (let i = 0; i < n; i++) {
        const at = r.pos;
        r.skip(r.u32());
        w.bytes(input.subarray(at, r.pos));
        const kind = r.byte();
        w.byte(kind);
        const index = r.u32();
        w.u32(
          kind === 0x00 ? shiftFunction(index, imported) : kind === 0x03 ? shiftGlobal(index, shift.globals) : index,
        );
      }
    } else w.u32(added);
    for (const [name, index] of [
      [exports.fuel, layout.fuel],
      [exports.memoryLimit, layout.memoryLimit],
      [exports.memoryRefused, layout.memoryRefused],
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
      w.u32(shiftFunction(info.startFunction, imported));
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
      w.u32(shiftGlobal(global.index, shift.globals));
    });
    writeSection(out, 7, w);
  };
  /** Sections this rewrite writes whether or not the module had them, by the order they go in. */
  const made: Array<[number, () => void]> = [
    [1, typeSection],
    [2, importSection],
    [3, functionSection],
    [6, globalSection],
    [7, exportSection],
  ];
  const writeMadeBefore = (order: number) => {
    while (made.length > 0 && (SECTION_ORDER[(made[0] as [number, () => void])[0]] as number) <= order) {
      (made.shift() as [number, () => void])[1]();
    }
  };
  for (const { id, start, end } of info.sections) {
    if (id !== 0) writeMadeBefore(SECTION_ORDER[id] as number);
    if (id === 1 || id === 2 || id === 3 || id === 6 || id === 7) continue;
    // The data goes into the image; with no memory.init/data.drop the data count is not needed either.
    if (image && (id === 11 || id === 12)) continue;
    if (exports.start && id === 8) continue;
    if (id === 8) {
      const w = new Writer(8);
      w.u32(shiftFunction(info.startFunction, imported));
      writeSection(out, 8, w);
    } else if (id === 4) writeSection(out, 4, rewriteTables(input, start, end, shift));
    else if (id === 9) writeSection(out, 9, rewriteElements(input, start, end, shift));
    else if (id === 11) writeSection(out, 11, rewriteData(input, start, end, shift));
    else if (id === 10) writeSection(out, 10, code.section);
    else if (id === 0) {
      const { name, payload } = customName(input, start, end);
      // Branch hints name code offsets that moved: better none than wrong ones.
      if (name.startsWith("metadata.code.")) continue;
      if (name === "name") {
        const w = new Writer(end - start + 1024);
        w.name(name);
        const names = rewriteNames(input, payload, end, {
          shift,
          twins,
          params: (k) => (info.types[info.functionTypes[k] as number] as { params: number }).params,
        });
        w.bytes(names.result());
        writeSection(out, 0, w);
      } else {
        out.byte(0);
        out.u32(end - start);
        out.bytes(input.subarray(start, end));
      }
    } else {
      out.byte(id);
      out.u32(end - start);
      out.bytes(input.subarray(start, end));
    }
  }
  writeMadeBefore(Number.POSITIVE_INFINITY);
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
