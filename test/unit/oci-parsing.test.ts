import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MAX_FILE_BYTES, MAX_FILES } from "../../host/src/capabilities/files-bundle.ts";
import { packageFunction, parseArtifactManifest, parseWasmConfig, shippedFiles } from "../../host/src/oci/artifact.ts";
import { canonicalJson } from "../../host/src/oci/canonical-json.ts";
import { parseChallenges } from "../../host/src/oci/challenge.ts";
import { type Descriptor, TITLE_ANNOTATION } from "../../host/src/oci/media-types.ts";
import { isLoopback, parseReference } from "../../host/src/oci/reference.ts";
import { componentPath } from "../support/host.ts";

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

describe("file layers of an artifact", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const files = [
    { path: "/data/b.txt", bytes: text("b") },
    { path: "/config.json", bytes: text("{}") },
  ];
  const packaged = () =>
    packageFunction(readFileSync(componentPath("tiny")), { name: "t", capabilities: { files: { "/": "." } } }, files);
  const withLayers = async (edit: (layers: Descriptor[]) => Descriptor[]) => {
    const manifest = JSON.parse(new TextDecoder().decode((await packaged()).manifest.bytes));
    return text(JSON.stringify({ ...manifest, layers: edit(manifest.layers) }));
  };
  const parse = (bytes: Uint8Array) => parseArtifactManifest(bytes, { maxLayerBytes: 1 << 30 });

  it("packages the files in path order after the component, and the config names every layer", async () => {
    const artifact = await packaged();
    const parsed = parse(artifact.manifest.bytes);
    expect(parsed.files.map((f) => f.path)).toEqual(["/config.json", "/data/b.txt"]);
    expect(shippedFiles(artifact)).toEqual([files[1], files[0]]);
    expect(() =>
      parseWasmConfig(artifact.config.bytes, artifact.config.descriptor, parsed.manifest.layers),
    ).not.toThrow();
    expect(() =>
      parseWasmConfig(artifact.config.bytes, artifact.config.descriptor, parsed.manifest.layers.slice(0, 2)),
    ).toThrow(expect.objectContaining({ code: "JOULE_ERR_OCI_MANIFEST_INVALID" }));
    const [component, first, second] = parsed.manifest.layers as [Descriptor, Descriptor, Descriptor];
    expect(() =>
      parseWasmConfig(artifact.config.bytes, artifact.config.descriptor, [component, second, first]),
    ).toThrow(expect.objectContaining({ code: "JOULE_ERR_OCI_MANIFEST_INVALID" }));
  });

  it.each<[string, (layers: Descriptor[]) => Descriptor[], string]>([
    [
      "another media type",
      (l) => [l[0] as Descriptor, { ...(l[1] as Descriptor), mediaType: "application/x-tar" }],
      "JOULE_ERR_OCI_MEDIA_TYPE",
    ],
    ["a second component", (l) => [l[0] as Descriptor, l[0] as Descriptor], "JOULE_ERR_OCI_MEDIA_TYPE"],
    ["the component not first", (l) => [l[1] as Descriptor, l[0] as Descriptor], "JOULE_ERR_OCI_MEDIA_TYPE"],
    [
      "no title",
      (l) => [l[0] as Descriptor, { ...(l[1] as Descriptor), annotations: {} }],
      "JOULE_ERR_OCI_MANIFEST_INVALID",
    ],
    [
      "a path that climbs",
      (l) => [
        l[0] as Descriptor,
        { ...(l[1] as Descriptor), annotations: { [TITLE_ANNOTATION]: "/data/../../etc/passwd" } },
      ],
      "JOULE_ERR_OCI_MANIFEST_INVALID",
    ],
    [
      "one path twice",
      (l) => [l[0] as Descriptor, l[1] as Descriptor, l[1] as Descriptor],
      "JOULE_ERR_OCI_MANIFEST_INVALID",
    ],
    [
      "a file over 16 MiB",
      (l) => [l[0] as Descriptor, { ...(l[1] as Descriptor), size: MAX_FILE_BYTES + 1 }],
      "JOULE_ERR_OCI_TOO_LARGE",
    ],
    [
      "over 64 MiB together",
      (l) => [
        l[0] as Descriptor,
        ...Array.from({ length: 5 }, (_, i) => ({
          ...(l[1] as Descriptor),
          size: MAX_FILE_BYTES,
          annotations: { [TITLE_ANNOTATION]: `/big${i}` },
        })),
      ],
      "JOULE_ERR_OCI_TOO_LARGE",
    ],
    [
      "more than 1,000 files",
      (l) => [
        l[0] as Descriptor,
        ...Array.from({ length: MAX_FILES + 1 }, (_, i) => ({
          ...(l[1] as Descriptor),
          annotations: { [TITLE_ANNOTATION]: `/f${i}` },
        })),
      ],
      "JOULE_ERR_OCI_MANIFEST_INVALID",
    ],
  ])("refuses file layers with %s before fetching any", async (_, edit, code) => {
    const bytes = await withLayers(edit);
    expect(() => parse(bytes)).toThrow(expect.objectContaining({ code }));
  });
});
