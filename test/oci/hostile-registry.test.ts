/**
 * What a real registry would not send, from a small node:http server that
 * misbehaves on purpose, one repository per misbehaviour. Every case must
 * end in a coded error and leave nothing of the artifact in the host's store.
 */
import { readdir, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Artifact, packageFunction } from "../../host/src/oci/artifact.ts";
import { sha256 } from "../../host/src/oci/digest.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;
let server: Server;
let address: string;
/** One artifact per repository (each its own digest), so no case finds another's in the host's store. */
const artifacts = new Map<string, Artifact>();
let tagMoves = 0;

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

function blobs(artifact: Artifact): Map<string, Uint8Array> {
  return new Map([artifact.manifest, artifact.config, artifact.layer].map((b) => [b.descriptor.digest, b.bytes]));
}

/** The repository name says how to misbehave. */
function handle(
  artifact: Artifact,
  repo: string,
  kind: "manifests" | "blobs",
  ref: string,
  method: string,
): {
  status: number;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
} {
  const digest = artifact.manifest.descriptor.digest;
  const manifestFor = (r: string) => (r === digest || r === "1" ? artifact.manifest.bytes : undefined);
  switch (repo) {
    case "denied":
      return {
        status: 403,
        body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
      };
    case "limited":
      return { status: 429, headers: { "retry-after": "30" }, body: '{"errors":[{"code":"TOOMANYREQUESTS"}]}' };
    case "broken":
      return { status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"storage failed"}]}' };
    case "huge-manifest":
      if (kind === "manifests") {
        const big = "x".repeat(5 * 1024 * 1024);
        return { status: 200, headers: { "content-type": MANIFEST, "docker-content-digest": sha256(big) }, body: big };
      }
      break;
    case "moving": {
      if (kind === "manifests" && ref === "1" && method === "HEAD") {
        tagMoves++;
        const now = tagMoves % 2 === 1 ? digest : sha256("another version");
        return { status: 200, headers: { "content-type": MANIFEST, "docker-content-digest": now } };
      }
      break;
    }
    case "wrong-manifest":
      if (kind === "manifests" && ref === digest) {
        const other = new TextEncoder().encode(
          new TextDecoder().decode(artifact.manifest.bytes).replace(`"schemaVersion":2`, `"schemaVersion": 2`),
        );
        return { status: 200, headers: { "content-type": MANIFEST }, body: other };
      }
      break;
    case "corrupt-layer":
      if (kind === "blobs" && ref === artifact.layer.descriptor.digest) {
        const bytes = new Uint8Array(artifact.layer.bytes);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
        return { status: 200, body: bytes };
      }
      break;
    case "long-layer":
      if (kind === "blobs" && ref === artifact.layer.descriptor.digest) {
        // No content-length (chunked): the body runs past the descriptor's size.
        return {
          status: 200,
          headers: { "transfer-encoding": "chunked" },
          body: new Uint8Array([...artifact.layer.bytes, 1, 2, 3]),
        };
      }
      break;
    case "short-layer":
      if (kind === "blobs" && ref === artifact.layer.descriptor.digest) {
        return { status: 200, body: artifact.layer.bytes.subarray(0, artifact.layer.bytes.length - 10) };
      }
      break;
  }
  if (kind === "manifests") {
    const bytes = manifestFor(ref);
    if (!bytes) return { status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' };
    return { status: 200, headers: { "content-type": MANIFEST, "docker-content-digest": digest }, body: bytes };
  }
  const bytes = blobs(artifact).get(ref);
  if (!bytes) return { status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN"}]}' };
  return { status: 200, headers: { "content-type": "application/octet-stream" }, body: bytes };
}

const REPOS = [
  "fine",
  "denied",
  "limited",
  "broken",
  "huge-manifest",
  "moving",
  "wrong-manifest",
  "corrupt-layer",
  "long-layer",
  "short-layer",
];

beforeAll(async () => {
  const tiny = await readFile(componentPath("tiny"));
  for (const repo of REPOS) artifacts.set(repo, await packageFunction(tiny, { name: repo, public: true }));
  artifacts.set("huge-layer", await packageFunction(await readFile(componentPath("hello")), { name: "hello" }));
  server = createServer((req, res) => {
    const match = /^\/v2\/([a-z-]+)\/(manifests|blobs)\/(.+)$/.exec(req.url ?? "");
    const artifact = artifacts.get(match?.[1] ?? "");
    if (!match || !artifact) return res.writeHead(req.url === "/v2/" ? 200 : 404).end();
    const [, repo, kind, ref] = match as unknown as [string, string, "manifests" | "blobs", string];
    const answer = handle(artifact, repo, kind, ref, req.method ?? "GET");
    const body = answer.body === undefined ? undefined : Buffer.from(answer.body);
    const headers: Record<string, string> = { ...answer.headers };
    if (body && !headers["transfer-encoding"]) headers["content-length"] = String(body.byteLength);
    res.writeHead(answer.status, headers);
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Loopback registries are listed, or the policy would refuse them first: this one, and the one that is down.
  t = await startTestHost({ ociMaxLayerBytes: 1024 * 1024, privateRegistries: `${address},127.0.0.1:1` });
});
afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => server?.close(resolve));
});

async function deploy(
  repo: string,
  ref = ":1",
): Promise<{ status: number; code: string; details: Record<string, unknown> }> {
  const response = await t.fetch(`/v1/functions/${repo}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ref: `oci://${address}/${repo}${ref}` }),
  });
  const body = await response.json();
  return { status: response.status, code: body.error?.code ?? "none", details: body.error?.details ?? {} };
}

describe("deploy by reference from a registry that misbehaves", () => {
  it("deploys from the well-behaved repository (the baseline the others break)", async () => {
    const { status } = await deploy("fine");
    expect(status).toBe(201);
    expect(await (await t.anonymous("/fn/fine/")).status).toBe(200);
  });

  it.each([
    ["denied", 502, "JOULE_ERR_OCI_REGISTRY_DENIED"],
    ["limited", 503, "JOULE_ERR_OCI_REGISTRY_RATE_LIMITED"],
    ["broken", 502, "JOULE_ERR_OCI_REGISTRY_ERROR"],
    ["huge-manifest", 413, "JOULE_ERR_OCI_TOO_LARGE"],
    ["moving", 409, "JOULE_ERR_OCI_TAG_MOVED"],
    ["wrong-manifest", 502, "JOULE_ERR_OCI_DIGEST_MISMATCH"],
    ["corrupt-layer", 502, "JOULE_ERR_OCI_DIGEST_MISMATCH"],
    ["long-layer", 502, "JOULE_ERR_OCI_SIZE_MISMATCH"],
    ["short-layer", 502, "JOULE_ERR_OCI_SIZE_MISMATCH"],
  ])("%s: %i %s, and nothing is stored", async (repo, status, code) => {
    const before = await readdir(join(t.dataDir, "blobs/sha256"));
    const failed = await deploy(repo);
    expect([failed.status, failed.code]).toEqual([status, code]);
    expect(await readdir(join(t.dataDir, "blobs/sha256"))).toEqual(before);
    expect(await readdir(join(t.dataDir, "tmp"))).toEqual([]);
    expect((await t.fetch(`/v1/functions/${repo}`)).status).toBe(404);
    if (repo === "limited") expect(failed.details.retryAfter).toBe("30");
  });

  it("refuses a layer over JOULE_OCI_MAX_LAYER_BYTES before downloading it", async () => {
    const failed = await deploy("huge-layer");
    expect([failed.status, failed.code]).toEqual([413, "JOULE_ERR_OCI_TOO_LARGE"]);
  });

  it("says which registry cannot be reached", async () => {
    const response = await t.fetch("/v1/functions/gone", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ref: "oci://127.0.0.1:1/gone/x:1" }),
    });
    const { error } = await response.json();
    expect([response.status, error.code]).toEqual([502, "JOULE_ERR_OCI_REGISTRY_UNREACHABLE"]);
    expect(error.message).toContain("127.0.0.1:1");
  });
});
