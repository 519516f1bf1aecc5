/**
 * Builds what the tests deploy, once per run: the example guests, a JS
 * fixture guest that misbehaves on request, and tiny hand-written components
 * (WAT) that answer, trap or spin. Builds are cached by input hash in each
 * guest's dist/, so a second run only checks.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildFunction } from "../host/src/build/build-function.ts";
import { ensureTestTools } from "../scripts/ensure-test-tools.ts";
import { watComponent } from "./support/wat-component.ts";

export const ROOT = new URL("..", import.meta.url).pathname;
export const BUILT = join(ROOT, "test/.built");

declare module "vitest" {
  export interface ProvidedContext {
    components: Record<string, string>;
    /** Why the OCI registry tests cannot run here; empty when they can. */
    registrySkip: string;
  }
}

/** A handler nested `depth` blocks deep that branches out of all of them and answers 200 "deep". */
function nestedBlocks(depth: number): string {
  const open = "(block ".repeat(depth);
  const close = ")".repeat(depth);
  return `(module
  (memory (export "memory") 1)
  (data (i32.const 64) "deep")
  (data (i32.const 128) "\\00\\00\\00\\00\\c8\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\40\\00\\00\\00\\04\\00\\00\\00")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "joule:function/handler@0.1.0#handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    ${open}(br ${depth - 1})${close}
    (i32.const 128)))`;
}

export default async function setup(project: TestProject): Promise<void> {
  const components: Record<string, string> = {};
  for (const dir of [
    "guests/hello",
    "guests/json-api",
    "guests/echo",
    "test/fixtures/guests/misbehave",
    "test/fixtures/guests/reach",
    // issue 15's workloads, for the fuel tests (and bench:fuel)
    "bench/guests/cpu",
  ]) {
    const result = await buildFunction(join(ROOT, dir));
    components[result.name] = result.componentPath;
  }
  await mkdir(BUILT, { recursive: true });
  const wat: Record<string, string> = {};
  for (const name of ["tiny", "trap", "spin", "lifecycle", "lifecycle-start", "lifecycle-big"])
    wat[name] = join(ROOT, `test/fixtures/wat/${name}.wat`);
  for (const file of await readdir(join(ROOT, "test/fixtures/wat/hostile"))) {
    wat[`hostile-${file.replace(/\.wat$/, "")}`] = join(ROOT, "test/fixtures/wat/hostile", file);
  }
  const nested = join(BUILT, "nested-blocks.wat");
  await writeFile(nested, nestedBlocks(1000));
  wat["hostile-nested-blocks"] = nested;
  for (const [name, source] of Object.entries(wat)) {
    const path = join(BUILT, `${name}.wasm`);
    await writeFile(path, await watComponent(source));
    components[name] = path;
  }
  project.provide("components", components);
  // The registry tools for the OCI tests, promtool for the metrics format test (it looks for it).
  const tools = ensureTestTools();
  project.provide("registrySkip", tools.registry.ok ? "" : tools.registry.reason);
}
