/**
 * `npm run pack [-- OUT]`: the tarballs a function's folder installs, as
 * `npm pack` makes them (default OUT: dist/packages):
 *
 * - `@joule/sdk`: sdk/ as it is (its TypeScript sources are read by the
 *   CLI's bundler, never run by Node), plus dist/ with JavaScript and
 *   declarations of the parts Node and tsc load: `@joule/sdk` and
 *   `@joule/sdk/testing`.
 * - `@joule/cli`: host/ compiled to JavaScript (Node refuses to strip
 *   TypeScript types under node_modules), the `joule` command, depending on
 *   the SDK and on the `node` package, which puts Node 24 first on PATH for
 *   npm scripts and npx in the folder that installs it.
 * - `create-joule`: packages/create-joule, for `npm create joule`.
 *
 * Prints the tarballs' paths as JSON. Nothing is published from here.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SCAFFOLD_TOOLS, scaffoldLock } from "../host/src/cli/init/scaffold.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const out = resolve(process.argv[2] ?? join(ROOT, "dist/packages"));
const stage = mkdtempSync(join(tmpdir(), "joule-pack-"));
const TSC = join(ROOT, "node_modules/.bin/tsc");

const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const sdkManifest = JSON.parse(readFileSync(join(ROOT, "sdk/package.json"), "utf8"));

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** tsc over `files`, into `outDir`, with relative `.ts` imports rewritten to `.js`. */
function compile(files: string[], rootDir: string, outDir: string, extra: Record<string, unknown> = {}): void {
  const config = join(stage, `tsconfig.${Math.random().toString(36).slice(2)}.json`);
  writeJson(config, {
    compilerOptions: {
      target: "es2024",
      module: "nodenext",
      moduleResolution: "nodenext",
      lib: ["es2024", "dom", "dom.iterable"],
      types: ["node"],
      typeRoots: [join(ROOT, "node_modules/@types")],
      strict: true,
      skipLibCheck: true,
      allowImportingTsExtensions: true,
      rewriteRelativeImportExtensions: true,
      verbatimModuleSyntax: true,
      erasableSyntaxOnly: true,
      rootDir,
      outDir,
      ...extra,
    },
    files,
  });
  execFileSync(TSC, ["-p", config], { cwd: ROOT, stdio: "inherit" });
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

function pack(dir: string): string {
  const name = execFileSync("npm", ["pack", "--pack-destination", out, "--json"], { cwd: dir, encoding: "utf8" });
  return join(out, (JSON.parse(name) as Array<{ filename: string }>)[0]?.filename as string);
}

mkdirSync(out, { recursive: true });

// @joule/sdk
const sdk = join(stage, "sdk");
for (const part of ["src", "wit", "README.md"]) cpSync(join(ROOT, "sdk", part), join(sdk, part), { recursive: true });
compile(
  ["index.ts", "testing.ts", "host.d.ts"].map((file) => join(ROOT, "sdk/src", file)),
  join(ROOT, "sdk/src"),
  join(sdk, "dist"),
  { declaration: true },
);
// The declarations of ctx.files name the world's imports (sdk/src/host.d.ts): their types go along.
cpSync(join(ROOT, "sdk/src/host.d.ts"), join(sdk, "dist/host.d.ts"));
const filesTypes = join(sdk, "dist/files.d.ts");
const declared = readFileSync(filesTypes, "utf8");
if (!declared.includes("host.d.ts")) writeFileSync(filesTypes, `/// <reference path="./host.d.ts" />\n${declared}`);
writeJson(join(sdk, "package.json"), {
  ...sdkManifest,
  exports: {
    ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
    "./testing": { types: "./dist/testing.d.ts", default: "./dist/testing.js" },
    "./adapter": "./src/adapter.ts",
    "./package.json": "./package.json",
  },
  files: ["src", "wit", "dist"],
});

// @joule/cli
const cli = join(stage, "cli");
const sources = walk(join(ROOT, "host/src")).filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"));
compile(sources, join(ROOT, "host/src"), join(cli, "host/src"));
// Worker and child-process entries are named by path, not imported: their names change too.
for (const file of walk(join(cli, "host/src")).filter((f) => f.endsWith(".js"))) {
  const text = readFileSync(file, "utf8");
  const fixed = text.replace(
    /new URL\("(\.{1,2}\/[^"]+)\.ts", import\.meta\.url\)/g,
    'new URL("$1.js", import.meta.url)',
  );
  if (fixed !== text) writeFileSync(file, fixed);
}
mkdirSync(join(cli, "host/bin"), { recursive: true });
writeFileSync(
  join(cli, "host/bin/joule.js"),
  readFileSync(join(ROOT, "host/bin/joule.js"), "utf8").replace("../src/cli/main.ts", "../src/cli/main.js"),
);
cpSync(join(ROOT, "host/README.md"), join(cli, "README.md"));
const cliDependencies = { ...root.dependencies, "@joule/sdk": sdkManifest.version, node: root.devDependencies.node };
const scaffoldVersions = Object.fromEntries(SCAFFOLD_TOOLS.map((tool) => [tool, root.devDependencies[tool]]));
// The locked versions `joule init` writes for a new function (host/src/cli/init/lock.ts).
const rootLock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
writeJson(
  join(cli, "scaffold-lock.json"),
  scaffoldLock(rootLock.packages, { dependencies: cliDependencies }, scaffoldVersions),
);
writeJson(join(cli, "package.json"), {
  name: "@joule/cli",
  version: root.version,
  description: "The joule command: scaffold, build, test, deploy and run WebAssembly functions.",
  type: "module",
  license: root.license,
  bin: { joule: "./host/bin/joule.js" },
  exports: { "./init": "./host/src/cli/init/scaffold.js", "./package.json": "./package.json" },
  dependencies: cliDependencies,
  // The exact versions `joule init` writes into a new function's package.json.
  scaffold: scaffoldVersions,
});

// create-joule
const create = join(stage, "create-joule");
cpSync(join(ROOT, "packages/create-joule"), create, { recursive: true });
writeJson(join(create, "package.json"), {
  name: "create-joule",
  version: root.version,
  description: "npm create joule: a new Joule function",
  type: "module",
  license: root.license,
  bin: { "create-joule": "./index.js" },
  dependencies: { "@joule/cli": root.version },
});

const tarballs = { sdk: pack(sdk), cli: pack(cli), create: pack(create) };
rmSync(stage, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(tarballs)}\n`);
