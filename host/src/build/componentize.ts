/**
 * Turns a bundle into a component with componentize-js, in a child process
 * whose working directory is the bundle's own (componentize-child.ts says
 * why), and sorts its failures: the function's own top-level code failing
 * while it is pre-initialized is the author's to fix (JOULE_ERR_BUILD_PREINIT);
 * anything else is the toolchain's and is never reported as the author's
 * mistake (JOULE_ERR_BUILD_COMPONENTIZE).
 */
import { fork } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { JouleError } from "../errors.ts";
import type { ComponentizeAnswer, ComponentizeRequest } from "./componentize-child.ts";

const CHILD = fileURLToPath(new URL("./componentize-child.ts", import.meta.url));

export interface Componentized {
  component: Uint8Array;
  /** What the function's top level printed while it was pre-initialized (console output of the guest). */
  output: string;
}

/** What a guest reached for at build time, by the import Wizer refused to call. */
function importUse(message: string): string | undefined {
  const name = /unknown imported function: '([^']+)' '([^']+)'/.exec(message);
  if (!name) return undefined;
  const [, iface = "", fn = ""] = name;
  if (iface.startsWith("wasi:random")) return `randomness (Math.random(), crypto.getRandomValues(): ${iface} ${fn})`;
  if (iface.startsWith("wasi:clocks")) return `the clock (${iface} ${fn})`;
  return `a host import (${iface} ${fn})`;
}

/** Wizer's and StarlingMonkey's output, cut down to the guest's own error. */
function preinitMessage(raw: string, where: string): string {
  const used = importUse(raw);
  const lines = used
    ? [`it used ${used}, which does not exist before the first request`]
    : raw
        .split("\n")
        .map((line) => line.trim())
        .filter(
          (line) => line && !/^(Error: )?Failed to initialize component|wizer|Stack backtrace|^\d+:|at /.test(line),
        );
  const summary = lines.slice(0, 6).join("\n");
  return `${where}: top-level code failed while pre-initializing the function at build time (Math.random(), the clock, and host calls are not available before the first request; move such work into fetch()):\n${summary}`;
}

/**
 * Whether componentize-js failed because of the guest's own top-level code:
 * it threw (not the engine failing to load it), or it called an import that
 * does not exist at build time.
 */
function guestFailed(message: string): boolean {
  if (/unknown imported function/.test(message)) return true;
  return /Exception while evaluating top-level script/.test(message) && !/Error loading module/.test(message);
}

function toolchainFailure(where: string, detail: string): JouleError {
  return new JouleError(
    "JOULE_ERR_BUILD_COMPONENTIZE",
    `${where}: the build toolchain (componentize-js) failed; this is not a mistake in the function. Please report it with this output:\n${detail.split("\n").slice(0, 12).join("\n")}`,
  );
}

/** `where` names the function's entry in messages. */
export async function componentizeBundle(request: ComponentizeRequest, where: string): Promise<Componentized> {
  const child = fork(CHILD, [], {
    cwd: dirname(request.sourcePath),
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    serialization: "advanced",
    execArgv: [],
  });
  let output = "";
  let errors = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString("utf8");
  });
  const answered = new Promise<ComponentizeAnswer | undefined>((resolve) => {
    child.once("message", (answer: ComponentizeAnswer) => resolve(answer));
    child.once("exit", () => resolve(undefined));
    child.once("error", () => resolve(undefined));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal })),
  );
  child.send(request);
  const answer = await answered;
  const { code, signal } = await exited;
  if (!answer) {
    throw toolchainFailure(
      where,
      `the componentize process exited (${signal ?? `code ${code}`}) without an answer\n${errors}`,
    );
  }
  if (!answer.ok) {
    if (guestFailed(answer.message))
      throw new JouleError("JOULE_ERR_BUILD_PREINIT", preinitMessage(answer.message, where));
    throw toolchainFailure(where, answer.message);
  }
  return { component: answer.component, output };
}
