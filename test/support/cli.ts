/** Runs the real `joule` command as a child process, with the project's Node. */
import { execFile } from "node:child_process";
import { join } from "node:path";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** Never throws: returns the exit code and what it printed. `input` is written to its stdin. */
export function joule(
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(ROOT, "host/bin/joule.js"), ...args],
      { cwd: ROOT, env: { ...process.env, JOULE_HOST: "", ...options.env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

/** Runs `joule ... --json` and returns the parsed result; fails the test with what it printed if it failed. */
export async function jouleJson(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
  const result = await joule([...args, "--json"], options);
  if (result.code !== 0) throw new Error(`joule ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout);
}
