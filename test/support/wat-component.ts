/**
 * Builds a component from a hand-written core module (WAT) that implements
 * the function world's ABI as of 0.1.0 (test/fixtures/wit): parse, embed
 * the world, wrap as a component, with jco's wasm-tools. For tests and
 * benchmarks of tiny and hostile guests, which are thereby also the tests
 * that 0.1.0 components keep working.
 */
import { readFile } from "node:fs/promises";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";

const WORLD = new URL("../fixtures/wit/joule-function-0.1.0.wit", import.meta.url);

/** A module that exports the lifecycle's init targets the `function` world, others `bare-function`. */
export async function watComponent(watPath: string | URL): Promise<Uint8Array> {
  const source = await readFile(watPath, "utf8");
  const core = await parse(source);
  const embedded = await componentEmbed({
    binary: core,
    witSource: await readFile(WORLD, "utf8"),
    world: source.includes('"joule:function/lifecycle@0.1.0#init"') ? "function" : "bare-function",
  });
  return componentNew(embedded);
}
