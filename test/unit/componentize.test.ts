/**
 * A toolchain failure is the toolchain's: componentize-js failing for any
 * reason but the guest's own top-level code is never reported as the
 * author's mistake (JOULE_ERR_BUILD_PREINIT), and a crash of the child
 * process is reported, not hung on.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { componentizeBundle } from "../../host/src/build/componentize.ts";
import { JouleError } from "../../host/src/errors.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "joule-componentize-"));
  await writeFile(join(dir, "bundle.js"), "export const handler = {};\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("componentizeBundle", () => {
  it("reports a failure of the toolchain as the toolchain's, never as the function's", async () => {
    const failure = await componentizeBundle(
      {
        sourcePath: join(dir, "bundle.js"),
        witWorld: "package broken:world; world function { export nonsense: func( }",
        worldName: "function",
        disableFeatures: [],
      },
      "src/index.ts",
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(JouleError);
    expect((failure as JouleError).code).toBe("JOULE_ERR_BUILD_COMPONENTIZE");
    expect((failure as JouleError).status).toBe(500);
    expect((failure as JouleError).message).toMatch(
      /^src\/index\.ts: the build toolchain .* not a mistake in the function/,
    );
  });
});
