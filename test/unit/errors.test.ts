import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ERROR_CATALOG, JouleError } from "../../host/src/errors.ts";

describe("the error catalog", () => {
  it("documents every code in docs/errors.md, with its status", async () => {
    const doc = await readFile(new URL("../../docs/errors.md", import.meta.url), "utf8");
    for (const [code, { status }] of Object.entries(ERROR_CATALOG)) {
      const row = doc.split("\n").find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, `${code} is not documented`).toBeDefined();
      if (!code.startsWith("JOULE_ERR_BUILD_") && !code.startsWith("JOULE_ERR_CLI_"))
        expect(row).toContain(`| ${status} |`);
    }
  });

  it("names every code JOULE_ERR_<AREA>_<WHAT>", () => {
    for (const code of Object.keys(ERROR_CATALOG)) expect(code).toMatch(/^JOULE_ERR_[A-Z]+_[A-Z_]+$/);
  });

  it("rebuilds an error that crossed a thread from its code", () => {
    const wire = new JouleError("JOULE_ERR_LIMIT_TIMEOUT", "too slow", { timeoutMs: 5 }).toWire();
    const rebuilt = JouleError.fromWire(structuredClone(wire));
    expect(rebuilt).toBeInstanceOf(JouleError);
    expect([rebuilt.code, rebuilt.status, rebuilt.message, rebuilt.details]).toEqual([
      "JOULE_ERR_LIMIT_TIMEOUT",
      504,
      "too slow",
      { timeoutMs: 5 },
    ]);
    expect(JouleError.fromWire({ code: "NOT_A_CODE" as never, message: "x" }).code).toBe("JOULE_ERR_HOST_INTERNAL");
  });
});
