/** Runs the real `joule` command as a child process, with the project's Node. */
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** Never throws: returns the exit code and what it printed. `input` is written to its stdin. */
export function joule(
  args: string[],
  options: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(ROOT, "host/bin/joule.js"), ...args],
      {
        cwd: options.cwd ?? ROOT,
        env: { ...process.env, JOULE_HOST: "", ...options.env },
        maxBuffer: 16 * 1024 * 1024,
      },
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

/** A long-running `joule` command (serve, dev): what it printed so far, a way to wait for a line, and to stop it. */
export interface RunningJoule {
  output(): string;
  /** Resolves with the first match of `pattern` in what it printed (stdout and stderr); rejects if it exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then waits for it to exit; resolves with its exit code. */
  stop(): Promise<number | null>;
}

export function startJoule(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; command?: string[] } = {},
): RunningJoule {
  const command = options.command ?? [process.execPath, join(ROOT, "host/bin/joule.js")];
  const [file, ...rest] = command as [string, ...string[]];
  const child = spawn(file, [...rest, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, JOULE_HOST: "", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString("utf8");
    for (const wake of waiters) wake();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let done = false;
  exited.then(() => {
    done = true;
    for (const wake of waiters) wake();
  });
  return {
    output: () => text,
    waitFor(pattern, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`timed out waiting for ${pattern}; output:\n${text}`)),
          timeoutMs,
        );
        const check = () => {
          const match = text.match(pattern);
          if (match) finish(undefined, match);
          else if (done) finish(new Error(`joule exited before printing ${pattern}; output:\n${text}`));
        };
        const finish = (error?: Error, match?: RegExpMatchArray) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve(match as RegExpMatchArray);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (!done) child.kill("SIGTERM");
      return exited;
    },
  };
}
