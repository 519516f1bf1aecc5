/**
 * Runs componentize-js for one bundle, in a process of its own started by
 * componentize.ts with its working directory set to the bundle's directory.
 *
 * Why a process: componentize-js strips `process.cwd()` from the source
 * path as a string prefix and maps that directory as the guest's `/`, so a
 * build from `~/code/joule` of a function in `~/code/joule-fns` (or any
 * build from `/`) loaded a module that does not exist. With the bundle's
 * own directory as the working directory, the guest sees exactly that
 * directory, whatever the caller's. It also keeps Wizer's blocking run and
 * the ~1 GB it takes out of a process that may be serving requests
 * (`joule dev`, `joule serve`).
 *
 * Protocol: one request over IPC, one answer back, then exit. What the
 * guest's top level prints at build time arrives on this process's stdout.
 */
import { componentize } from "@bytecodealliance/componentize-js";

export interface ComponentizeRequest {
  /** The bundle, absolute, in this process's working directory. */
  sourcePath: string;
  witWorld: string;
  worldName: string;
  disableFeatures: string[];
}

export type ComponentizeAnswer = { ok: true; component: Uint8Array } | { ok: false; message: string };

process.once("message", async (request: ComponentizeRequest) => {
  let answer: ComponentizeAnswer;
  try {
    // componentize-js's own types lag its API: `witWorld` is accepted but not declared.
    const { component } = await componentize({
      sourcePath: request.sourcePath,
      // Inline WIT: the splicer runs under preview2-shim without preopens and cannot read paths.
      witWorld: request.witWorld,
      worldName: request.worldName,
      disableFeatures: request.disableFeatures,
    } as { sourcePath: string });
    answer = { ok: true, component };
  } catch (error) {
    answer = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  process.send?.(answer, () => process.disconnect());
});
