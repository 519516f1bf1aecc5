/**
 * `joule build`: bundle a function's TypeScript with the SDK (esbuild) and
 * turn the bundle into a WebAssembly component (componentize-js's JS API,
 * against the WIT world vendored in sdk/wit). Output goes to `dist/` beside
 * the manifest: `bundle.js`, `component.wasm`, and `build.json` holding the
 * hash of every input so an unchanged function is not rebuilt.
 *
 * Toolchain failures are turned into JouleErrors naming the file, never a
 * stack trace from esbuild, Wizer or the splicer.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build as esbuild, type Message } from "esbuild";
import { JouleError } from "../errors.ts";
import { type Manifest, parseManifest } from "../manifest.ts";
import { componentizeBundle } from "./componentize.ts";

const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../sdk");
const WIT_DIR = join(SDK_DIR, "wit");
const ADAPTER = join(SDK_DIR, "src/adapter.ts");

/** StarlingMonkey features the Joule world does not use: its own HTTP stack and fetch-event. */
const DISABLED_FEATURES = ["http", "fetch-event"] as const;

export interface BuildResult {
  name: string;
  manifest: Manifest;
  componentPath: string;
  bytes: number;
  /** False when the component was up to date and nothing was built. */
  built: boolean;
  durationMs: number;
}

export async function readManifest(functionDir: string): Promise<Manifest> {
  const path = join(functionDir, "joule.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new JouleError("JOULE_ERR_BUILD_MANIFEST", `${path} not found: a function directory needs a joule.json`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new JouleError("JOULE_ERR_BUILD_MANIFEST", `${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseManifest(json, path);
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

async function bundle(functionDir: string, manifest: Manifest): Promise<string> {
  const entry = resolve(functionDir, manifest.main);
  const cwd = process.cwd();
  const where = relative(cwd, entry);
  try {
    await stat(entry);
  } catch {
    throw new JouleError("JOULE_ERR_BUILD_MANIFEST", `${where} not found (joule.json "main")`);
  }
  const granted = grantedInterfaces(manifest);
  const source = [
    `import definition from ${JSON.stringify(entry)};`,
    `import { adapt } from ${JSON.stringify(ADAPTER)};`,
    ...granted.map(({ key, iface }) => `import * as ${key} from "joule:function/${iface}@${WIT_VERSION}";`),
    `export const { handler, lifecycle, warmUp } = adapt(definition, { ${granted.map(({ key }) => key).join(", ")} });`,
  ].join("\n");
  try {
    const result = await esbuild({
      stdin: { contents: source, resolveDir: functionDir, sourcefile: "joule-entry.js", loader: "js" },
      // Paths in the bundle relative to the function, not to wherever the build was started:
      // the same sources give the same bundle, so an unchanged function is not rebuilt.
      absWorkingDir: functionDir,
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      external: ["joule:*", "wasi:*"],
      logLevel: "silent",
      // Let a function import the SDK by name whether or not it has its own node_modules.
      alias: { "@joule/sdk": join(SDK_DIR, "src/index.ts") },
      legalComments: "none",
    });
    const output = result.outputFiles[0];
    if (!output) throw new Error("esbuild produced no output");
    return output.text;
  } catch (error) {
    const failure = error as { errors?: Message[] };
    if (!failure.errors?.length) throw error;
    const text = formatMessages(failure.errors, functionDir);
    if (failure.errors.some((m) => /No matching export .* for import "default"/.test(m.text))) {
      throw new JouleError(
        "JOULE_ERR_BUILD_NO_DEFAULT_EXPORT",
        `${where} has no default export: end it with \`export default defineFunction({ fetch(request, env, ctx) { ... } })\``,
      );
    }
    throw new JouleError("JOULE_ERR_BUILD_SYNTAX", `${where} does not compile:\n${text}`);
  }
}

const WIT_VERSION = "0.1.0";

/** Capability interfaces of the world, by the joule.json key that grants them. */
const CAPABILITY_INTERFACES = [
  { key: "kv", iface: "kv" },
  { key: "outboundHttp", iface: "outbound-http" },
  { key: "files", iface: "files" },
] as const;

/** The capability interfaces a manifest declares (a non-empty grant). */
function grantedInterfaces(manifest: Manifest) {
  return CAPABILITY_INTERFACES.filter(({ key }) => {
    const grant = manifest.capabilities[key];
    return Array.isArray(grant) ? grant.length > 0 : Object.keys(grant).length > 0;
  });
}

/**
 * The function's world: sdk/wit/world.wit with its `function` world cut
 * down to the capabilities the manifest declares, so the component imports
 * only those and deploy can tell what it uses.
 */
export function functionWorld(worldWit: string, manifest: Manifest): string {
  const start = worldWit.indexOf("world function {");
  if (start < 0) throw new Error("sdk/wit/world.wit has no `world function`");
  const end = worldWit.indexOf("}", start);
  const imports = grantedInterfaces(manifest).map(({ iface }) => `  import ${iface};\n`);
  const world = `world function {\n  import host;\n${imports.join("")}  export handler;\n  export lifecycle;\n  export warm-up;\n}`;
  return `${worldWit.slice(0, start)}${world}${worldWit.slice(end + 1)}`;
}

async function inputsHash(functionDir: string, bundled: string, world: string): Promise<string> {
  const hash = createHash("sha256");
  hash.update(bundled);
  hash.update(world);
  hash.update(await readFile(join(functionDir, "joule.json")));
  hash.update(JSON.stringify(DISABLED_FEATURES));
  return hash.digest("hex");
}

export async function buildFunction(functionDir: string, options: { force?: boolean } = {}): Promise<BuildResult> {
  const started = performance.now();
  const dir = resolve(functionDir);
  const manifest = await readManifest(dir);
  const where = relative(process.cwd(), resolve(dir, manifest.main));
  const bundled = await bundle(dir, manifest);
  const distDir = join(dir, "dist");
  const componentPath = join(distDir, "component.wasm");
  const stampPath = join(distDir, "build.json");
  const world = functionWorld(await readFile(join(WIT_DIR, "world.wit"), "utf8"), manifest);
  const hash = await inputsHash(dir, bundled, world);

  if (!options.force) {
    const previous = await readFile(stampPath, "utf8").then(JSON.parse, () => undefined);
    const existing = await stat(componentPath).catch(() => undefined);
    if (existing && previous?.inputs === hash && existing.size === previous.bytes) {
      return {
        name: manifest.name,
        manifest,
        componentPath,
        bytes: existing.size,
        built: false,
        durationMs: performance.now() - started,
      };
    }
  }

  await mkdir(distDir, { recursive: true });
  const bundlePath = join(distDir, "bundle.js");
  await writeFile(bundlePath, bundled);
  const { component } = await componentizeBundle(
    { sourcePath: bundlePath, witWorld: world, worldName: "function", disableFeatures: [...DISABLED_FEATURES] },
    where,
  );
  const temp = `${componentPath}.${process.pid}.tmp`;
  await writeFile(temp, component);
  await rename(temp, componentPath);
  await writeFile(stampPath, `${JSON.stringify({ inputs: hash, bytes: component.byteLength }, null, 2)}\n`);
  return {
    name: manifest.name,
    manifest,
    componentPath,
    bytes: component.byteLength,
    built: true,
    durationMs: performance.now() - started,
  };
}
