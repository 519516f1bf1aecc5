/**
 * The bundle of a function: its entry module, the SDK's adapter and every
 * package it imports, as one ES module for componentize-js (esbuild).
 *
 * Packages resolve the way they do for a Web worker: the `worker` and
 * `browser` export conditions and the `browser` field are honoured, so a
 * package that ships a Web build (nanoid, uuid...) gets it instead of its
 * Node one. Node's built-ins resolve to the Web equivalents a function has,
 * where they exist (sdk/src/node/: `node:crypto` is Web Crypto under
 * Node's names); any other built-in, or a name a shim lacks, fails the
 * build with JOULE_ERR_BUILD_UNSUPPORTED_MODULE naming the package and the
 * import. The bundle's paths are relative to the function, never to where
 * the build was started, so the same sources give the same bundle.
 */
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { isBuiltin } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { build as esbuild, type Message, type Plugin } from "esbuild";
import { JouleError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import { grantedCapabilities, grantedInterfaces, WIT_VERSION } from "./world.ts";

export interface Bundle {
  code: string;
  /** The source map (JSON), for pointing at the function's lines. */
  map: string;
}

/** Node's built-ins a function has a Web equivalent of, by their module name. */
const NODE_SHIMS = ["crypto", "util", "url", "buffer", "timers", "perf_hooks"];

/** The package a file belongs to, from its node_modules path; undefined for the function's own files. */
function packageOf(file: string): string | undefined {
  return /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1];
}

/** Whether a package `name` is installed in a node_modules at or above `dir`. */
function installed(name: string, dir: string): boolean {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, "node_modules", name, "package.json"))) return true;
    if (dirname(at) === at) return false;
  }
}

/** Resolves Node's built-ins to the SDK's Web shims, and refuses the others naming who imports them. */
function nodeBuiltins(sdkDir: string): Plugin {
  return {
    name: "joule-node-builtins",
    setup(build) {
      build.onResolve({ filter: /^[a-z_/]+$|^node:/ }, (args) => {
        if (!isBuiltin(args.path)) return undefined;
        const name = args.path.replace(/^node:/, "");
        // A bare name a package of the same name is installed under (`buffer`, `events`: the Web
        // polyfills of Node's modules) is that package, as other bundlers have it.
        if (!args.path.startsWith("node:") && installed(name.split("/")[0] as string, args.resolveDir))
          return undefined;
        if (NODE_SHIMS.includes(name)) return { path: join(sdkDir, "src/node", `${name}.ts`) };
        const who = packageOf(args.importer);
        return {
          errors: [
            {
              text: `${who ? `the package ${who}` : "this module"} imports "${args.path}", a Node.js built-in that functions do not have (they have Web APIs; of Node's built-ins only ${NODE_SHIMS.map((n) => `node:${n}`).join(", ")} map to their Web equivalents)${who ? `: look for a version or an alternative of ${who} for Web workers or browsers` : ""}`,
            },
          ],
        };
      });
    },
  };
}

/** esbuild's messages, with paths (relative to `base`, the function's directory) as the user's cwd sees them. */
function formatMessages(messages: Message[], base: string): string {
  const cwd = process.cwd();
  return messages
    .map((m) => {
      const where = m.location
        ? `${relative(cwd, resolve(base, m.location.file))}:${m.location.line}:${m.location.column + 1}: `
        : "";
      return `${where}${m.text}`;
    })
    .join("\n");
}

/** A missing name of a shim, said as the import of a built-in it is. */
function shimGap(message: Message): Message | undefined {
  const gap = /No matching export in "[^"]*sdk\/src\/node\/(\w+)\.ts" for import "([^"]+)"/.exec(message.text);
  if (!gap) return undefined;
  const who = message.location ? packageOf(message.location.file) : undefined;
  return {
    ...message,
    text: `${who ? `the package ${who}` : "this module"} imports ${gap[2]} from "node:${gap[1]}", which functions do not have: there node:${gap[1]} is the Web's (sdk/src/node/${gap[1]}.ts lists what it has)`,
  };
}

export async function bundle(functionDir: string, manifest: Manifest, sdkDir: string): Promise<Bundle> {
  const entry = resolve(functionDir, manifest.main);
  const where = relative(process.cwd(), entry);
  try {
    await stat(entry);
  } catch {
    throw new JouleError("JOULE_ERR_BUILD_MANIFEST", `${where} not found (joule.json "main")`);
  }
  const granted = grantedInterfaces(manifest);
  const fetches = grantedCapabilities(manifest).some(({ key }) => key === "outboundHttp");
  const passed = [...granted.map(({ key }) => key), ...(fetches ? ["outboundHttp: true"] : [])];
  const source = [
    // First: it watches what the function's top level does at build time (sdk/src/build-watch.ts).
    `import { endBuildWatch } from ${JSON.stringify(join(sdkDir, "src/build-watch.ts"))};`,
    `import definition from ${JSON.stringify(entry)};`,
    `import { adapt } from ${JSON.stringify(join(sdkDir, "src/adapter.ts"))};`,
    ...granted.map(({ key, iface }) => `import * as ${key} from "joule:function/${iface}@${WIT_VERSION}";`),
    "endBuildWatch();",
    `export const { handler, lifecycle, warmUp } = adapt(definition, { ${passed.join(", ")} });`,
  ].join("\n");
  try {
    const result = await esbuild({
      stdin: { contents: source, resolveDir: functionDir, sourcefile: "joule-entry.js", loader: "js" },
      // Paths in the bundle relative to the function, not to wherever the build was started:
      // the same sources give the same bundle, so an unchanged function is not rebuilt.
      absWorkingDir: functionDir,
      outfile: join(functionDir, "dist/bundle.js"),
      bundle: true,
      write: false,
      format: "esm",
      // A Web worker's resolution: the browser field and condition, and the worker one.
      platform: "browser",
      conditions: ["worker"],
      define: { "process.env.NODE_ENV": '"production"' },
      target: "es2022",
      external: ["joule:*", "wasi:*"],
      plugins: [nodeBuiltins(sdkDir)],
      logLevel: "silent",
      sourcemap: "external",
      // The SDK the adapter is from, even where the function has its own copy installed: one
      // CapabilityDeniedError class, so `instanceof` holds.
      alias: { "@joule/sdk": join(sdkDir, "src/index.ts") },
      legalComments: "none",
    });
    const code = result.outputFiles.find((file) => file.path.endsWith(".js"));
    const map = result.outputFiles.find((file) => file.path.endsWith(".map"));
    if (!code || !map) throw new Error("esbuild produced no output");
    return { code: code.text, map: map.text };
  } catch (error) {
    const failure = error as { errors?: Message[] };
    if (!failure.errors?.length) throw error;
    if (failure.errors.some((m) => /No matching export .* for import "default"/.test(m.text) && !shimGap(m))) {
      throw new JouleError(
        "JOULE_ERR_BUILD_NO_DEFAULT_EXPORT",
        `${where} has no default export: end it with \`export default defineFunction({ fetch(request, env, ctx) { ... } })\``,
      );
    }
    const unsupported = failure.errors
      .map((m) => shimGap(m) ?? m)
      .filter((m) => /Node\.js built-in|node:/.test(m.text));
    if (unsupported.length > 0) {
      throw new JouleError(
        "JOULE_ERR_BUILD_UNSUPPORTED_MODULE",
        `${where} imports what cannot work in a function:\n${formatMessages(unsupported, functionDir)}`,
      );
    }
    throw new JouleError(
      "JOULE_ERR_BUILD_SYNTAX",
      `${where} does not compile:\n${formatMessages(failure.errors, functionDir)}`,
    );
  }
}
