/**
 * `joule build --typecheck`: `tsc --noEmit` over the function's folder
 * before building, with the function's own TypeScript (its
 * node_modules/.bin/tsc, as `joule init` installs it), else the one beside
 * this CLI. The build itself only strips types (esbuild), as Node does.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { JouleError } from "../errors.ts";

function findTsc(dir: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    const tsc = join(at, "node_modules/.bin/tsc");
    if (existsSync(tsc)) return tsc;
    if (dirname(at) === at) break;
  }
  const beside = join(dirname(new URL(import.meta.url).pathname), "../../../node_modules/.bin/tsc");
  return existsSync(beside) ? beside : undefined;
}

export async function typecheck(dir: string): Promise<void> {
  const where = relative(process.cwd(), dir) || ".";
  if (!existsSync(join(dir, "tsconfig.json")))
    throw new JouleError(
      "JOULE_ERR_BUILD_TYPECHECK",
      `${where} has no tsconfig.json to typecheck with (joule init writes one)`,
    );
  const tsc = findTsc(dir);
  if (!tsc)
    throw new JouleError("JOULE_ERR_BUILD_TYPECHECK", `no TypeScript found for ${where}: npm install -D typescript`);
  const output = await new Promise<string | undefined>((resolve) =>
    execFile(
      tsc,
      ["--noEmit", "-p", dir, "--pretty", "false"],
      { cwd: dir, maxBuffer: 8 * 1024 * 1024 },
      (error, stdout) => resolve(error ? stdout || error.message : undefined),
    ),
  );
  if (output !== undefined) {
    const lines = output
      .trim()
      .split("\n")
      .map((line) => (line.startsWith("/") ? line : join(where, line)));
    throw new JouleError("JOULE_ERR_BUILD_TYPECHECK", `${where} does not typecheck:\n${lines.slice(0, 30).join("\n")}`);
  }
}
