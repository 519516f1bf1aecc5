/** `joule bench`: the comparison benchmark in bench/compare.ts (the same as `npm run bench`). */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parse } from "../args.ts";
import { PROJECT_ROOT } from "../project.ts";

export async function bench(args: string[]): Promise<void> {
  parse(args, {});
  const child = spawn(process.execPath, ["--expose-gc", join(PROJECT_ROOT, "bench/compare.ts")], {
    stdio: "inherit",
    cwd: PROJECT_ROOT,
  });
  process.exitCode = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
}
