/**
 * `joule init` and `npm create joule`: a new function's folder, ready to
 * `npm install`, typecheck, test without a host, build and deploy. It holds
 * joule.json, src/index.ts and its test, a package.json that depends on the
 * SDK and the CLI (the CLI brings Node 24: the `node` package puts it first
 * on PATH for npm scripts and npx), and a tsconfig.json under which `tsc`
 * passes. Plain Node (no TypeScript-only syntax here, nothing beyond
 * node:fs), because `npm create joule` may run it on an older Node.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type LockPackages, lockSubtree } from "./lock.ts";
import { TEMPLATE_FILES, TEMPLATES, type Template } from "./templates.ts";

/** The versions a new function depends on: the CLI's own, the SDK's, and the tools the CLI was made with. */
export interface ScaffoldVersions {
  cli: string;
  sdk: string;
  /** Exact versions of typescript, @types/node, node and the templates' packages (hono). */
  tools: Record<string, string>;
  /** Lock entries of everything those install (lock.ts), when this CLI has them. */
  lock?: LockPackages;
}

export interface Scaffolded {
  dir: string;
  name: string;
  template: Template;
  files: string[];
  note?: string;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

export class ScaffoldError extends Error {
  override name = "ScaffoldError";
}

const TSCONFIG = {
  compilerOptions: {
    target: "es2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    // The function runs Web APIs; node's types are there for the tests (node:test).
    lib: ["es2023", "dom", "dom.iterable"],
    types: ["node"],
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    erasableSyntaxOnly: true,
    skipLibCheck: true,
  },
  include: ["src"],
};

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function scaffold(
  target: string,
  options: { template?: string; name?: string },
  versions: ScaffoldVersions,
): Scaffolded {
  const template = (options.template ?? "http") as Template;
  if (!TEMPLATES.includes(template)) {
    throw new ScaffoldError(`--template takes ${TEMPLATES.join(", ")}; not ${options.template}`);
  }
  const dir = resolve(target);
  const name = options.name ?? basename(dir);
  if (!NAME.test(name)) {
    throw new ScaffoldError(
      `${name} is not a function name: 1–63 of a-z 0-9 -, starting with a letter (choose one with --name)`,
    );
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new ScaffoldError(`${target} exists and is not empty: choose a new folder`);
  }
  const files = TEMPLATE_FILES[template];
  const tool = (pkg: string) => {
    const version = versions.tools[pkg];
    if (!version) throw new ScaffoldError(`this CLI does not know which version of ${pkg} to use`);
    return version;
  };
  const dependencies: Record<string, string> = { "@joule/sdk": `^${versions.sdk}` };
  for (const pkg of files.dependencies) dependencies[pkg] = `^${tool(pkg)}`;
  const written: Record<string, string> = {
    "joule.json": json({ name, public: true, env: { GREETING: "Hello" } }),
    "src/index.ts": files.index,
    "src/index.test.ts": files.test,
    "tsconfig.json": json(TSCONFIG),
    ".gitignore": "node_modules/\ndist/\n",
    "package.json": json({
      name,
      private: true,
      type: "module",
      scripts: {
        dev: "joule dev .",
        build: "joule build .",
        deploy: "joule deploy .",
        test: "node --test src/*.test.ts",
        typecheck: "tsc --noEmit",
      },
      dependencies,
      devDependencies: {
        "@joule/cli": `^${versions.cli}`,
        "@types/node": tool("@types/node"),
        // Node 24 for every npm script and npx here, whatever Node the machine has.
        node: tool("node"),
        typescript: tool("typescript"),
      },
      // npm 11 runs install scripts only of the packages named here: node's fetches its binary.
      allowScripts: { node: true, esbuild: true },
    }),
  };
  if (versions.lock) {
    const manifest = JSON.parse(written["package.json"] as string);
    written["package-lock.json"] = json({
      name,
      lockfileVersion: 3,
      requires: true,
      packages: {
        "": { name, dependencies: manifest.dependencies, devDependencies: manifest.devDependencies },
        ...versions.lock,
      },
    });
  }
  for (const [path, text] of Object.entries(written)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return { dir, name, template, files: Object.keys(written), ...(files.note ? { note: files.note } : {}) };
}

/**
 * The versions of the CLI package at `packageJson`: the installed @joule/cli
 * (its `scaffold` versions and scaffold-lock.json, made by scripts/pack.ts),
 * or the repository's root (its devDependencies and package-lock.json).
 */
export function versionsFrom(packageJson: string, sdkPackageJson: string): ScaffoldVersions {
  const cli = JSON.parse(readFileSync(packageJson, "utf8")) as {
    version: string;
    scaffold?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const sdk = JSON.parse(readFileSync(sdkPackageJson, "utf8")) as { version: string };
  const tools = cli.scaffold ?? cli.devDependencies ?? {};
  const read = (file: string) => (existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined);
  const packed = read(join(packageJson, "../scaffold-lock.json")) as LockPackages | undefined;
  const repo = packed ? undefined : (read(join(packageJson, "../package-lock.json")) as { packages?: LockPackages });
  const lock =
    packed ??
    (repo?.packages ? scaffoldLock(repo.packages, cli as { dependencies?: Record<string, string> }, tools) : undefined);
  return { cli: cli.version, sdk: sdk.version, tools, ...(lock ? { lock } : {}) };
}

/** The lock entries a new function installs: what the CLI depends on, and the tools. */
export function scaffoldLock(
  packages: LockPackages,
  cli: { dependencies?: Record<string, string> },
  tools: Record<string, string>,
): LockPackages {
  const roots = [...Object.keys(cli.dependencies ?? {}), ...SCAFFOLD_TOOLS.filter((tool) => tools[tool])];
  return lockSubtree(
    packages,
    roots.filter((name) => !name.startsWith("@joule/")),
  );
}

/** What a new function's package.json names besides Joule's own packages. */
export const SCAFFOLD_TOOLS = ["typescript", "@types/node", "node", "hono"];
