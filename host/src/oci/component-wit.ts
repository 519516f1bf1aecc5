/**
 * The WIT imports and exports of a component, for the artifact's config:
 * jco's `componentWit` decodes the component's world (wit-component
 * metadata) and prints it; the `import`/`export` lines of that world are
 * the names. Interfaces keep their package and version
 * (`wasi:io/poll@0.2.12`); a bare function import keeps its name.
 */
import { componentWit } from "@bytecodealliance/jco";
import { JouleError } from "../errors.ts";

export interface ComponentWorld {
  imports: string[];
  exports: string[];
}

export async function componentWorld(component: Uint8Array): Promise<ComponentWorld> {
  let wit: string;
  try {
    wit = await componentWit(component);
  } catch (error) {
    throw new JouleError(
      "JOULE_ERR_DEPLOY_INVALID_COMPONENT",
      `the component's WIT could not be read: ${String((error as Error).message ?? error).split("\n")[0]}`,
    );
  }
  const imports: string[] = [];
  const exports: string[] = [];
  // Only the world's own items: nested interface bodies are indented further.
  for (const match of wit.matchAll(/^ {2}(import|export) ([^\s;]+?)(?:;|: )/gm)) {
    (match[1] === "import" ? imports : exports).push(match[2] as string);
  }
  return { imports: imports.sort(), exports: exports.sort() };
}
