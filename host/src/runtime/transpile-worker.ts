/**
 * Runs jco's transpile off the main thread (it takes about a second on a JS
 * guest and would stall every request if run inline). Instantiation mode:
 * the glue imports nothing itself; the host passes every import.
 */
import { transpile } from "@bytecodealliance/jco";
import type { DerivedFiles } from "../store/function-store.ts";

export const GLUE_NAME = "component";

/**
 * jco's glue logs through `_debugLog`, which reads `process.env.JCO_DEBUG` on
 * every call: about a thousand environment reads per request, 40% of a warm
 * invocation. Joule never runs the glue with that variable, so the check is
 * compiled out.
 */
const DEBUG_LOG_CHECK = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }";

export function optimizeGlue(glue: string): string {
  return glue.replaceAll(DEBUG_LOG_CHECK, "return;");
}

export default async function transpileComponent(bytes: Uint8Array): Promise<DerivedFiles> {
  const { files, imports, exports } = await transpile(bytes, {
    name: GLUE_NAME,
    instantiation: { tag: "sync" },
    noTypescript: true,
    nodejsCompat: false,
    map: {},
  } as never);
  const modules: Record<string, Uint8Array> = {};
  let glue = "";
  for (const [name, content] of Object.entries(files as Record<string, Uint8Array>)) {
    if (name.endsWith(".wasm")) modules[name] = content;
    else if (name === `${GLUE_NAME}.js`) glue = optimizeGlue(new TextDecoder().decode(content));
  }
  // Returned by copy: the module views may share one buffer, which cannot be transferred twice.
  return {
    glue,
    modules,
    imports: imports as string[],
    exports: (exports as Array<[string, string]>).map(([name]) => name),
  };
}
