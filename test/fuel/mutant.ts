/**
 * Mutants of the production instrumenter's output, for the mutation test:
 * one static charge (`local.get L; i64.const c; i64.sub; local.set L`, the
 * only place the instrumenter subtracts a constant from a local and stores
 * it back into the same local) dropped to 0 or doubled. The differential
 * test must notice every one that runs.
 */
import { Reader, Writer } from "../../host/src/fuel/bytes.ts";
import { decode, type IndexTypes, skipValtype } from "../../host/src/fuel/instructions.ts";

export type Mutation = "drop" | "double";

interface Op {
  start: number;
  end: number;
}

function ops(bytes: Uint8Array, start: number, end: number): Op[] {
  const types: IndexTypes = { memory64: [], table64: [] };
  const r = new Reader(bytes, start, end);
  const decls = r.u32();
  for (let i = 0; i < decls; i++) {
    r.u32();
    skipValtype(r);
  }
  const out: Op[] = [{ start, end: r.pos }]; // the declarations, kept as they are
  while (r.pos < end) {
    const at = r.pos;
    decode(r, types);
    out.push({ start: at, end: r.pos });
  }
  return out;
}

/** Whether the ops from `i` are a charge of a positive constant. */
function isCharge(bytes: Uint8Array, list: Op[], i: number): boolean {
  const [get, konst, sub, set] = [list[i], list[i + 1], list[i + 2], list[i + 3]];
  if (!get || !konst || !sub || !set) return false;
  if (bytes[get.start] !== 0x20 || bytes[konst.start] !== 0x42) return false;
  if (bytes[sub.start] !== 0x7d || bytes[set.start] !== 0x21) return false;
  const local = (op: Op) => new Reader(bytes, op.start + 1, op.end).u32();
  return local(get) === local(set) && new Reader(bytes, konst.start + 1, konst.end).s64() > 0n;
}

/** How many charges the module has. */
export function countCharges(module: Uint8Array): number {
  let n = 0;
  forEachBody(module, (start, end) => {
    const list = ops(module, start, end);
    for (let i = 0; i < list.length; i++) if (isCharge(module, list, i)) n++;
    return undefined;
  });
  return n;
}

/** The module with its `which`-th charge (in code order) dropped or doubled. */
export function mutateCharge(module: Uint8Array, which: number, mutation: Mutation): Uint8Array {
  let seen = 0;
  return forEachBody(module, (start, end) => {
    const list = ops(module, start, end);
    let changed: Writer | undefined;
    for (let i = 0; i < list.length; i++) {
      if (!isCharge(module, list, i) || seen++ !== which) continue;
      const konst = list[i + 1] as Op;
      const cost = new Reader(module, konst.start + 1, konst.end).s64();
      changed = new Writer(end - start + 16);
      changed.bytes(module.subarray(start, konst.start));
      changed.byte(0x42);
      changed.s64(mutation === "drop" ? 0n : cost * 2n);
      changed.bytes(module.subarray(konst.end, end));
    }
    return changed;
  });
}

/** Calls `visit` on each function body; rebuilds the module with the bodies it returns. */
function forEachBody(module: Uint8Array, visit: (start: number, end: number) => Writer | undefined): Uint8Array {
  const out = new Writer(module.length + 64);
  out.bytes(module.subarray(0, 8));
  const r = new Reader(module, 8);
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.pos += size;
    if (id !== 10) {
      out.byte(id);
      out.u32(size);
      out.bytes(module.subarray(start, r.pos));
      continue;
    }
    const s = new Reader(module, start, r.pos);
    const code = new Writer(size + 64);
    const n = s.u32();
    code.u32(n);
    for (let i = 0; i < n; i++) {
      const bodySize = s.u32();
      const body = visit(s.pos, s.pos + bodySize);
      if (body) code.sized(body);
      else {
        code.u32(bodySize);
        code.bytes(module.subarray(s.pos, s.pos + bodySize));
      }
      s.pos += bodySize;
    }
    out.byte(10);
    out.sized(code);
  }
  return out.result().slice();
}
