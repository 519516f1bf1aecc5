import { describe, expect, it } from "vitest";
import { checkResponse, sanitize } from "../../host/src/runtime/response.ts";

const ok = (headers: Array<[string, string]>, status = 200) => ({ status, headers, body: new Uint8Array(3) });

describe("checking a guest's response", () => {
  it("keeps the function's headers, lower-cased, and drops the ones the host owns", () => {
    const checked = checkResponse(
      ok([
        ["X-Mine", "1"],
        ["Content-Length", "99"],
        ["x-joule-cold-start", "false"],
        ["Transfer-Encoding", "chunked"],
      ]),
      10,
    );
    expect(checked.headers).toEqual([["x-mine", "1"]]);
  });

  it("accepts tabs and latin-1 in values, and up to the header limits", () => {
    const many = Array.from({ length: 256 }, (_, i): [string, string] => [`x-${i}`, "v\tw\u00e9"]);
    expect(checkResponse(ok(many), 10).headers).toHaveLength(256);
  });

  it.each([
    [ok([], 99), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok([], 600), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok([["bad name", "x"]]), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok([["x-split", "a\r\nset-cookie: evil=1"]]), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok([["x-ctl", "a\x01b"]]), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok([["x-wide", "\u0100"]]), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok(Array.from({ length: 257 }, (_, i): [string, string] => [`x-${i}`, "v"])), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [ok([["x-big", "v".repeat(70 * 1024)]]), "JOULE_ERR_EXECUTION_BAD_RESPONSE"],
    [{ status: 200, headers: [], body: new Uint8Array(11) }, "JOULE_ERR_LIMIT_RESPONSE_TOO_LARGE"],
  ])("refuses %j", (response, code) => {
    expect(() => checkResponse(response as never, 10)).toThrow(expect.objectContaining({ code }));
  });
});

describe("sanitizing messages that leave the host", () => {
  it("removes file paths and bounds the length", () => {
    expect(sanitize("failed at /work/main/host/src/x.ts:10:5 and file:///tmp/a/b.mjs")).toBe(
      "failed at <path> and <path>",
    );
    expect(sanitize("x".repeat(5000)).length).toBeLessThanOrEqual(2049);
    expect(sanitize("a\n".repeat(50)).split("\n").length).toBeLessThanOrEqual(10);
  });
});
