/**
 * Runs jco's transpile off the main thread (it takes about a second on a JS
 * guest and would stall every request if run inline). Instantiation mode:
 * the glue imports nothing itself; the host passes every import.
 */
import { transpile } from "@bytecodealliance/jco";
import type { WireError } from "../errors.ts";
import { FuelError } from "../fuel/fuel-error.ts";
import { instrument, type MeterExports } from "../fuel/instrument.ts";
import { componentWorld } from "../oci/component-wit.ts";
import type { DerivedFiles } from "../store/function-store.ts";
import { coalesce, encodeImage } from "./memory-image.ts";
import { sanitize } from "./response.ts";

export const GLUE_NAME = "component";

/**
 * Imports that may wait, by interface (unversioned) and function, as jco
 * names them: each becomes a suspending import (JSPI), so the guest's Wasm
 * stack suspends while the host waits and the worker runs other
 * invocations meanwhile (capabilities/io.ts). They answer at once when
 * nothing needs waiting for.
 */
const SUSPENDING: Record<string, string[]> = {
  "joule:function/body": ["read", "write"],
  "joule:function/outbound-http": ["send"],
  "wasi:io/poll": ["poll", "[method]pollable.block"],
  "wasi:io/streams": ["[method]input-stream.blocking-read"],
};

/** Exports that may suspend on such an import: a request, and init (which may fetch config or wait). */
const ASYNC_EXPORTS = [
  "joule:function/handler@0.2.0#handle",
  "joule:function/lifecycle@0.2.0#init",
  "joule:function/handler@0.1.0#handle",
  "joule:function/lifecycle@0.1.0#init",
];

/** The suspending imports of a component, with the versions it imports them at. */
export function suspendingImports(imports: readonly string[]): string[] {
  return imports.flatMap((specifier) => {
    const at = specifier.lastIndexOf("@");
    const iface = at > 0 ? specifier.slice(0, at) : specifier;
    return (SUSPENDING[iface] ?? []).map((fn) => `${specifier}#${fn}`);
  });
}

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
  const world = await componentWorld(bytes);
  const { files, imports, exports } = await transpile(bytes, {
    name: GLUE_NAME,
    instantiation: { tag: "sync" },
    // JSPI: the handler and init exports return promises, and waiting (timers, outbound HTTP) is a
    // host call that suspends the guest's Wasm stack (no helper thread, no blocked worker).
    // Measured on a JS guest: the same warm-call median as without it.
    asyncMode: "jspi",
    asyncImports: suspendingImports(world.imports),
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
