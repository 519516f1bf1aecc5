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
import { JouleError } from "../errors.ts";
import { type Manifest, parseManifest } from "../manifest.ts";
import { buildWarnings } from "./build-warnings.ts";
import { bundle } from "./bundle.ts";
import { componentizeBundle } from "./componentize.ts";
import { functionWorld } from "./world.ts";

/**
 * The SDK a build wires in: the `@joule/sdk` package beside this CLI (a
 * workspace link in the repository, a dependency where the CLI is
 * installed), else the repository's sdk/.
 */
function sdkDir(): string {
  try {
    return dirname(fileURLToPath(import.meta.resolve("@joule/sdk/package.json")));
  } catch {
    return resolve(dirname(fileURLToPath(import.meta.url)), "../../../sdk");
  }
}

const SDK_DIR = sdkDir();
const WIT_DIR = join(SDK_DIR, "wit");

/**
 * StarlingMonkey features the Joule world does not use: fetch-event (Joule
 * calls `handler.handle`, not wasi:http/incoming-handler). Its HTTP stack
 * stays: the guest's own `fetch` runs over wasi:http, so several requests of
 * one invocation run at once, timers fire meanwhile and AbortSignal works
 * (capabilities/wasi-http/).
 */
const DISABLED_FEATURES = ["fetch-event"] as const;

export interface BuildResult {
  name: string;
  manifest: Manifest;
  componentPath: string;
  bytes: number;
  /** False when the component was up to date and nothing was built. */
  built: boolean;
  durationMs: number;
  /** Where a build's time went (zero for what a cached build skipped). */
  timings: { bundleMs: number; componentizeMs: number };
  /** What the build noticed that is likely a mistake (top-level clock reads), each naming a line; kept with a cached build. */
  warnings: string[];
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
  const bundled = await bundle(dir, manifest, SDK_DIR);
  const bundleMs = performance.now() - started;
  const distDir = join(dir, "dist");
  const componentPath = join(distDir, "component.wasm");
  const stampPath = join(distDir, "build.json");
  const world = functionWorld(await readFile(join(WIT_DIR, "world.wit"), "utf8"), manifest);
  const hash = await inputsHash(dir, bundled.code, world);
  let componentizeMs = 0;
  const result = (bytes: number, built: boolean, warnings: string[]): BuildResult => ({
    name: manifest.name,
    manifest,
    componentPath,
    bytes,
    built,
    durationMs: performance.now() - started,
    timings: { bundleMs, componentizeMs },
    warnings,
  });

  if (!options.force) {
    const previous = await readFile(stampPath, "utf8").then(JSON.parse, () => undefined);
    const existing = await stat(componentPath).catch(() => undefined);
    if (existing && previous?.inputs === hash && existing.size === previous.bytes) {
      return result(existing.size, false, Array.isArray(previous.warnings) ? previous.warnings : []);
    }
  }

  await mkdir(distDir, { recursive: true });
  const bundlePath = join(distDir, "bundle.js");
  await writeFile(bundlePath, bundled.code);
  await writeFile(`${bundlePath}.map`, bundled.map);
  const componentizeStarted = performance.now();
  const { component, output } = await componentizeBundle(
    { sourcePath: bundlePath, witWorld: world, worldName: "function", disableFeatures: [...DISABLED_FEATURES] },
    where,
  );
  componentizeMs = performance.now() - componentizeStarted;
  const warnings = buildWarnings(output, bundled.map, distDir, where);
  const temp = `${componentPath}.${process.pid}.tmp`;
  await writeFile(temp, component);
  await rename(temp, componentPath);
  await writeFile(stampPath, `${JSON.stringify({ inputs: hash, bytes: component.byteLength, warnings }, null, 2)}\n`);
  return result(component.byteLength, true, warnings);
}
