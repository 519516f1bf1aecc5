/**
 * The imports the instrumenter adds come after the module's own: the
 * refill function after its imported functions, so every defined
 * function's index moves up by one, and the shared fuel and reserve
 * globals after its imported globals, so every defined global's moves up
 * by two. These rewrite what names a function or a global outside of
 * code: constant expressions (`ref.func` and `global.get` in global, table,
 * element and data initializers), element segments, and the name section
 * (which also names the twins). Exports and the start function are
 * rewritten where they are written (instrument.ts), code in body.ts.
 */
import { Reader, Writer } from "./bytes.ts";
import { FuelError } from "./fuel-error.ts";
import { decode, type IndexTypes, skipValtype } from "./instructions.ts";

/** Moves function indices past the module's imports up by one. */
export function shiftFunction(index: number, imported: number): number {
  return index >= imported ? index + 1 : index;
}

/** Globals the instrumenter imports after the module's own imported globals: fuel and reserve. */
export const ADDED_GLOBAL_IMPORTS = 2;

/** Moves global indices past the module's imports up by ADDED_GLOBAL_IMPORTS. */
export function shiftGlobal(index: number, imported: number): number {
  return index >= imported ? index + ADDED_GLOBAL_IMPORTS : index;
}

/** Where indices start to move: the module's own imported functions and globals. */
export interface Shift {
  functions: number;
  globals: number;
}

const NO_TYPES: IndexTypes = { memory64: [], table64: [] };

/** Copies a constant expression (through its `end`), with `ref.func` and `global.get` moved. */
export function copyConstExpr(r: Reader, w: Writer, shift: Shift): void {
  for (;;) {
    const at = r.pos;
    const op = r.peek();
    if (op === 0x0b) {
      r.pos++;
      w.byte(0x0b);
      return;
    }
    if (op === 0xd2 || op === 0x23) {
      r.pos++;
      w.byte(op);
      const index = r.u32();
      w.u32(op === 0xd2 ? shiftFunction(index, shift.functions) : shiftGlobal(index, shift.globals));
      continue;
    }
    decode(r, NO_TYPES);
    w.bytes(r.bytes.subarray(at, r.pos));
  }
}

function copyFunctionIndices(r: Reader, w: Writer, shift: Shift): void {
  const n = r.u32();
  w.u32(n);
  for (let i = 0; i < n; i++) w.u32(shiftFunction(r.u32(), shift.functions));
}

function copyExprs(r: Reader, w: Writer, shift: Shift): void {
  const n = r.u32();
  w.u32(n);
  for (let i = 0; i < n; i++) copyConstExpr(r, w, shift);
}

/** The element section, its function indices and initializers moved. */
export function rewriteElements(bytes: Uint8Array, start: number, end: number, shift: Shift): Writer {
  const r = new Reader(bytes, start, end);
  const w = new Writer(end - start + 64);
  const n = r.u32();
  w.u32(n);
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    w.u32(flags);
    const active = (flags & 0x01) === 0;
    const explicitTable = (flags & 0x02) !== 0;
    const expressions = (flags & 0x04) !== 0;
    if (flags > 7) throw new FuelError("malformed", `element segment flags ${flags}`);
    if (active && explicitTable) w.u32(r.u32());
    if (active) copyConstExpr(r, w, shift);
    // Every form but 0 and 4 names its element kind or reference type.
    if (!active || explicitTable) {
      const at = r.pos;
      if (expressions) skipValtype(r);
      else r.byte();
      w.bytes(bytes.subarray(at, r.pos));
    }
    if (expressions) copyExprs(r, w, shift);
    else copyFunctionIndices(r, w, shift);
  }
  if (r.pos !== end) throw new FuelError("malformed", "bytes after the element section");
  return w;
}

/** The global section's own globals, their initializers moved (the count is the caller's). */
export function rewriteGlobals(bytes: Uint8Array, start: number, end: number, shift: Shift): Writer {
  const r = new Reader(bytes, start, end);
  const w = new Writer(end - start + 64);
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    skipValtype(r);
    r.byte(); // mutability
    w.bytes(bytes.subarray(at, r.pos));
    copyConstExpr(r, w, shift);
  }
  return w;
}

/** The data section, active segments' offsets moved (they may read a global). */
export function rewriteData(bytes: Uint8Array, start: number, end: number, shift: Shift): Writer {
  const r = new Reader(bytes, start, end);
  const w = new Writer(end - start + 64);
  const n = r.u32();
  w.u32(n);
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    w.u32(flags);
    if (flags === 2) w.u32(r.u32());
    if (flags !== 1) copyConstExpr(r, w, shift);
    const length = r.u32();
    w.u32(length);
    const at = r.pos;
    r.skip(length);
    w.bytes(bytes.subarray(at, r.pos));
  }
  return w;
}

/** The table section, initializers (`0x40 0x00` tables) rewritten. */
export function rewriteTables(bytes: Uint8Array, start: number, end: number, shift: Shift): Writer {
  const r = new Reader(bytes, start, end);
  const w = new Writer(end - start + 64);
  const n = r.u32();
  w.u32(n);
  for (let i = 0; i < n; i++) {
    const withInit = r.peek() === 0x40;
    const at = r.pos;
    if (withInit) r.pos += 2;
    skipValtype(r);
    const flags = r.byte();
    r.skipLeb(10);
    if (flags & 0x01) r.skipLeb(10);
    w.bytes(bytes.subarray(at, r.pos));
    if (withInit) copyConstExpr(r, w, shift);
  }
  return w;
}

/** Who is named what in the rewritten module: a twin takes its function's names, its locals moved. */
export interface Naming {
  shift: Shift;
  /** Per defined function: its twin's index or -1, and its parameter count. */
  twins: Int32Array;
  params: (defined: number) => number;
}

function readNameMap(r: Reader): Array<[number, Uint8Array]> {
  const n = r.u32();
  const out: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < n; i++) {
    const index = r.u32();
    const at = r.pos;
    r.skip(r.u32());
    out.push([index, r.bytes.subarray(at, r.pos)]);
  }
  return out;
}

function writeNameMap(w: Writer, entries: Array<[number, Uint8Array]>): void {
  w.u32(entries.length);
  for (const [index, name] of entries) {
    w.u32(index);
    w.bytes(name);
  }
}

/**
 * The "name" custom section's payload (after its own name): function
 * names moved, twins named like their functions, local names given to the
 * twin with its locals moved (the wrapper keeps its parameters'), global
 * names moved. Label names are dropped: a twin's extra block renumbers its
 * labels.
 */
export function rewriteNames(bytes: Uint8Array, start: number, end: number, naming: Naming): Writer {
  const r = new Reader(bytes, start, end);
  const w = new Writer(end - start + 1024);
  const { twins } = naming;
  const imported = naming.shift.functions;
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const sub = new Reader(bytes, r.pos, r.pos + size);
    r.pos += size;
    const payload = new Writer(size + 256);
    if (id === 1) {
      const names = readNameMap(sub).map(([i, name]): [number, Uint8Array] => [shiftFunction(i, imported), name]);
      for (const [i, name] of [...names]) {
        const twin = i > imported ? (twins[i - imported - 1] as number) : -1;
        if (twin >= 0) names.push([twin, name]);
      }
      writeNameMap(payload, names);
    } else if (id === 2) {
      const n = sub.u32();
      const own: Array<[number, Array<[number, Uint8Array]>]> = [];
      const twinned: Array<[number, Array<[number, Uint8Array]>]> = [];
      for (let k = 0; k < n; k++) {
        const fn = sub.u32();
        const locals = readNameMap(sub);
        const defined = fn - imported;
        const twin = defined >= 0 ? (twins[defined] as number) : -1;
        if (twin < 0) {
          own.push([shiftFunction(fn, imported), locals]);
          continue;
        }
        const params = naming.params(defined);
        own.push([fn + 1, locals.filter(([i]) => i < params)]);
        twinned.push([twin, locals.map(([i, name]): [number, Uint8Array] => [i >= params ? i + 1 : i, name])]);
      }
      payload.u32(own.length + twinned.length);
      for (const [fn, locals] of [...own, ...twinned]) {
        payload.u32(fn);
        writeNameMap(payload, locals);
      }
    } else if (id === 3) {
      continue;
    } else if (id === 7) {
      const globals = naming.shift.globals;
      writeNameMap(
        payload,
        readNameMap(sub).map(([i, name]): [number, Uint8Array] => [shiftGlobal(i, globals), name]),
      );
    } else payload.bytes(sub.bytes.subarray(sub.pos, sub.end));
    w.byte(id);
    w.sized(payload);
  }
  return w;
}
