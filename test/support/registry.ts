/** The registry tests' view of the machine: whether they can run, and the registry processes. */
import { inject } from "vitest";

export * from "./registry-process.ts";

/** Why registry tests cannot run on this machine ("" when they can). */
export function registrySkip(): string {
  return inject("registrySkip");
}
