import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../host/src/oci/canonical-json.ts";
import { parseChallenges } from "../../host/src/oci/challenge.ts";
import { isLoopback, parseReference } from "../../host/src/oci/reference.ts";

const D = `sha256:${"a".repeat(64)}`;

describe("artifact references", () => {
  it.each([
    ["127.0.0.1:5000/functions/hello:1.0", { registry: "127.0.0.1:5000", repository: "functions/hello", tag: "1.0" }],
    ["oci://ghcr.io/acme/fn/hello", { registry: "ghcr.io", repository: "acme/fn/hello", tag: "latest" }],
    [`localhost:5000/hello@${D}`, { registry: "localhost:5000", repository: "hello", tag: undefined, digest: D }],
    [`r.example/a/b:v2@${D}`, { registry: "r.example", repository: "a/b", tag: "v2", digest: D }],
    ["[::1]:5000/x:y", { registry: "[::1]:5000", repository: "x", tag: "y" }],
  ])("parses %s", (text, expected) => {
    expect(parseReference(text)).toMatchObject(expected);
  });

  it.each([
    "hello:1.0",
    "/hello",
    "r.example/Upper:1",
    "r.example/a:b:c",
    "r.example/a@sha256:short",
    `r.example/a@sha512:${"a".repeat(128)}`,
    "r.example/a:-tag",
    "bad host/a:1",
    "r.example/a//b",
  ])("refuses %s with JOULE_ERR_OCI_REFERENCE_INVALID", (text) => {
    expect(() => parseReference(text)).toThrow(expect.objectContaining({ code: "JOULE_ERR_OCI_REFERENCE_INVALID" }));
  });

  it("talks plain HTTP to loopback registries only", () => {
    expect(["127.0.0.1:5000", "localhost", "[::1]:5000", "127.8.0.1"].every(isLoopback)).toBe(true);
    expect(["ghcr.io", "10.0.0.1:5000", "localhost.evil.com", "127.0.0.1.nip.io"].some(isLoopback)).toBe(false);
  });
});

describe("WWW-Authenticate challenges", () => {
  it("reads a Bearer challenge whose scope has commas inside quotes", () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: "bearer",
        params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" },
      },
    ]);
  });

  it("reads several challenges in one header, escapes, and unquoted values", () => {
    expect(parseChallenges('Basic realm="a \\"quoted\\" realm", Bearer realm=https://t.example/token')).toEqual([
      { scheme: "basic", params: { realm: 'a "quoted" realm' } },
      { scheme: "bearer", params: { realm: "https://t.example/token" } },
    ]);
    expect(parseChallenges("")).toEqual([]);
    expect(parseChallenges("Bearer abc==")).toHaveLength(1);
  });
});

describe("canonical JSON", () => {
  it("sorts keys at every depth and drops undefined, so equal documents have equal bytes", () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[{"y":2,"z":1}]},"b":1}');
  });
});
