import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ERROR_CATALOG, JouleError } from "../../host/src/errors.ts";

/** docs/errors.md's table as code → status cell, whatever the cell padding. */
async function documentedCodes(): Promise<Map<string, string>> {
  const doc = await readFile(new URL("../../docs/errors.md", import.meta.url), "utf8");
  const rows = doc
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .map((line) => line.split("|").map((cell) => cell.trim()));
  return new Map(rows.map((cells) => [(cells[1] ?? "").replaceAll("`", ""), cells[2] ?? ""]));
}

describe("the error catalog", () => {
  it("documents every code in docs/errors.md, with its status", async () => {
    const documented = await documentedCodes();
    for (const [code, { status }] of Object.entries(ERROR_CATALOG)) {
      expect(documented.has(code), `${code} is not documented`).toBe(true);
      const cliOnly = code.startsWith("JOULE_ERR_BUILD_") || code.startsWith("JOULE_ERR_CLI_");
      expect(documented.get(code), `status of ${code}`).toBe(cliOnly ? "—" : String(status));
    }
  });

  it("names every code JOULE_ERR_<AREA>_<WHAT>, but the one the capacity issue named itself", () => {
    for (const code of Object.keys(ERROR_CATALOG)) {
      if (code === "JOULE_ERR_CAPACITY") continue;
      expect(code).toMatch(/^JOULE_ERR_[A-Z]+_[A-Z_]+$/);
    }
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
