/**
 * Runs jco's transpile off the main thread (it takes about a second on a JS
 * guest and would stall every request if run inline). Instantiation mode:
 * the glue imports nothing itself; the host passes every import.
 */
import { transpile } from "@bytecodealliance/jco";
import type { WireError } from "../errors.ts";
import { FuelError } from "../fuel/fuel-error.ts";
import { instrument, type MeterExports } from "../fuel/instrument.ts";
import type { DerivedFiles } from "../store/function-store.ts";
import { coalesce, encodeImage } from "./memory-image.ts";
import { sanitize } from "./response.ts";

export const GLUE_NAME = "component";
const ASYNC_IMPORT = "joule:function/outbound-http@0.1.0#send";
/** Exports that may suspend on an async import: a request, and init (which may fetch config). */
const ASYNC_EXPORTS = ["joule:function/handler@0.1.0#handle", "joule:function/lifecycle@0.1.0#init"];

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

export type TranspileResult = { ok: true; files: DerivedFiles } | { ok: false; error: WireError };

function firstLine(error: unknown): string {
  return sanitize(error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}

/** Transpiles and meters a component; failures come back as coded errors, not throws. */
export default async function transpileComponent(bytes: Uint8Array): Promise<TranspileResult> {
  try {
    return { ok: true, files: await derive(bytes) };
  } catch (error) {
    if (error instanceof FuelError && error.kind === "unsupported") {
      return {
        ok: false,
        error: { code: "JOULE_ERR_FUEL_UNSUPPORTED", message: `a core module cannot be metered: ${error.message}` },
      };
    }
    const what = error instanceof FuelError ? "a core module is malformed" : "the component could not be transpiled";
    return {
      ok: false,
      error: { code: "JOULE_ERR_DEPLOY_INVALID_COMPONENT", message: `${what}: ${firstLine(error)}` },
    };
  }
}

async function derive(bytes: Uint8Array): Promise<DerivedFiles> {
  const { files, imports, exports } = await transpile(bytes, {
    name: GLUE_NAME,
    instantiation: { tag: "sync" },
    // JSPI: the handler and init exports return promises and outbound HTTP is an async host call that
    // suspends the guest's Wasm stack (no helper thread, no blocked worker). Measured on a JS
    // guest: the same warm-call median as without it (docs/capabilities.md, "outboundHttp").
    asyncMode: "jspi",
    asyncImports: [ASYNC_IMPORT],
    asyncExports: ASYNC_EXPORTS,
    noTypescript: true,
    nodejsCompat: false,
    map: {},
  } as never);
  const modules: Record<string, Uint8Array> = {};
  const meters: Record<string, MeterExports> = {};
  const images: Record<string, Uint8Array> = {};
  let memoryMinPages = 0;
  let glue = "";
  let preparable = true;
  let snapshots = true;
  const started = performance.now();
  for (const [name, content] of Object.entries(files as Record<string, Uint8Array>)) {
    if (name.endsWith(".wasm")) {
      // Nothing runs while instantiating (start functions are deferred); the host sets the fuel first.
      const metered = instrument(content, { splitData: true, deferStart: true });
      modules[name] = metered.bytes;
      if (metered.image) images[name] = encodeImage(coalesce(metered.image));
      meters[name] = metered.exports;
      if (metered.exports.start || metered.keepsData) preparable = false;
      if (metered.opaqueGlobals) snapshots = false;
      // Limits hold for the whole function: its modules' memories together.
      memoryMinPages += metered.memoryMinPages;
    } else if (name === `${GLUE_NAME}.js`) glue = optimizeGlue(new TextDecoder().decode(content));
  }
  // Returned by copy: the module views may share one buffer, which cannot be transferred twice.
  return {
    glue,
    modules,
    meters,
    images,
    memoryMinPages,
    instrumentMs: performance.now() - started,
    imports: imports as string[],
    exports: (exports as Array<[string, string]>).map(([name]) => name),
    preparable,
    snapshots: preparable && snapshots,
  };
}
