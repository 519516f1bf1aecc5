/**
 * Builds what the tests deploy, once per run: the example guests, a JS
 * fixture guest that misbehaves on request, and tiny hand-written components
 * (WAT) that answer, trap or spin. Builds are cached by input hash in each
 * guest's dist/, so a second run only checks.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildFunction } from "../host/src/build/build-function.ts";
import { watComponent } from "./support/wat-component.ts";

export const ROOT = new URL("..", import.meta.url).pathname;
export const BUILT = join(ROOT, "test/.built");

declare module "vitest" {
  export interface ProvidedContext {
    components: Record<string, string>;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const components: Record<string, string> = {};
  for (const dir of ["guests/hello", "guests/json-api", "guests/echo", "test/fixtures/guests/misbehave"]) {
    const result = await buildFunction(join(ROOT, dir));
    components[result.name] = result.componentPath;
  }
  await mkdir(BUILT, { recursive: true });
  for (const name of ["tiny", "trap", "spin"]) {
    const path = join(BUILT, `${name}.wasm`);
    await writeFile(path, await watComponent(join(ROOT, `test/fixtures/wat/${name}.wat`)));
    components[name] = path;
  }
  project.provide("components", components);
}
