/**
 * Functions as OCI artifacts against a real registry (CNCF distribution 2.8,
 * no auth): package, push, pull, skopeo interop, and deploy by reference.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule, jouleJson, ROOT } from "../support/cli.ts";
import { componentPath, reachDir, startTestHost, type TestHost } from "../support/host.ts";
import { registrySkip, startRegistry, type TestRegistry } from "../support/registry.ts";

const run = promisify(execFile);
const skip = registrySkip();
if (skip) console.warn(`skipping the OCI registry tests: ${skip}`);

let registry: TestRegistry;
let t: TestHost;
let work: string;
let layout: string;
let digest: string;

async function layoutFiles(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of await readdir(join(dir, "blobs/sha256"))) {
    files.set(name, await readFile(join(dir, "blobs/sha256", name)));
  }
  return files;
}

function deployRef(name: string, ref: string, extra: Record<string, unknown> = {}, key?: string): Promise<Response> {
  return t.fetch(`/v1/functions/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ ref, ...extra }),
  });
}

describe.skipIf(skip !== "")("functions as OCI artifacts, through a real registry", () => {
  beforeAll(async () => {
    registry = await startRegistry();
    // The registry is on loopback: the host pulls from it only because it is listed.
    t = await startTestHost({ privateRegistries: registry.address });
    work = await mkdtemp(join(tmpdir(), "joule-oci-"));
    layout = join(work, "hello-oci");
    const packaged = await jouleJson(["package", "guests/hello", "--out", layout, "--tag", "1.0"]);
    digest = packaged.digest;
  });
  afterAll(async () => {
    await t?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("packages a function as a CNCF Wasm artifact, to the same digest every time", async () => {
    const again = await jouleJson(["package", "guests/hello", "--out", join(work, "again"), "--tag", "1.0"]);
    expect(again.digest).toBe(digest);
    expect(await readFile(join(layout, "oci-layout"), "utf8")).toBe('{"imageLayoutVersion":"1.0.0"}\n');
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8"));
    expect(index.manifests).toEqual([
      expect.objectContaining({
        digest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        annotations: { "org.opencontainers.image.ref.name": "1.0" },
      }),
    ]);
    const blob = (d: string) => readFile(join(layout, "blobs/sha256", d.slice(7)));
    const manifest = JSON.parse((await blob(digest)).toString());
    expect(manifest.config.mediaType).toBe("application/vnd.wasm.config.v0+json");
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0].mediaType).toBe("application/wasm");
    // The component travels as built, byte for byte; joule.json as an annotation.
    expect((await blob(manifest.layers[0].digest)).equals(await readFile(componentPath("hello")))).toBe(true);
    expect(JSON.parse(manifest.annotations["dev.joule.function.manifest"])).toEqual(
      JSON.parse(await readFile(join(ROOT, "guests/hello/joule.json"), "utf8")),
    );
    const config = JSON.parse((await blob(manifest.config.digest)).toString());
    expect(config).toMatchObject({ architecture: "wasm", os: "wasip2", layerDigests: [manifest.layers[0].digest] });
    expect(config.component.exports).toEqual([
      "joule:function/handler@0.2.0",
      "joule:function/lifecycle@0.2.0",
      "joule:function/warm-up@0.2.0",
    ]);
    expect(config.component.imports).toContain("wasi:io/poll@0.2.12");
    expect(config.created).toBeUndefined();
  });

  it("pushes, skips blobs the registry has, uploads in chunks, and pulls back byte-identical", async () => {
    const ref = `${registry.address}/functions/hello:1.0`;
    const first = await jouleJson(["push", layout, ref]);
    expect(first).toMatchObject({ digest, uploaded: 2, skipped: 0 });
    const second = await jouleJson(["push", layout, ref]);
    expect(second).toMatchObject({ digest, uploaded: 0, skipped: 2 });
    const chunked = await jouleJson([
      "push",
      `${layout}:1.0`,
      `${registry.address}/chunked/hello:1.0`,
      "--chunk-size",
      "1000000",
    ]);
    expect(chunked).toMatchObject({ digest, uploaded: 2 });

    const byTag = await jouleJson(["pull", `${registry.address}/chunked/hello:1.0`, join(work, "pulled")]);
    expect(byTag.digest).toBe(digest);
    expect(await layoutFiles(join(work, "pulled"))).toEqual(await layoutFiles(layout));
    const byDigest = await jouleJson([
      "pull",
      `${registry.address}/functions/hello@${digest}`,
      join(work, "by-digest"),
    ]);
    expect(byDigest.digest).toBe(digest);
    expect(await layoutFiles(join(work, "by-digest"))).toEqual(await layoutFiles(layout));
  });

  it("interoperates with skopeo: a copy of a pushed artifact pulls back identical; a layout skopeo copied deploys", async () => {
    await jouleJson(["push", layout, `${registry.address}/functions/hello:1.0`]);
    await run("skopeo", [
      "copy",
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      `docker://${registry.address}/functions/hello:1.0`,
      `docker://${registry.address}/copies/hello:copied`,
    ]);
    const pulled = await jouleJson(["pull", `${registry.address}/copies/hello:copied`, join(work, "copied")]);
    expect(pulled.digest).toBe(digest);
    expect(await layoutFiles(join(work, "copied"))).toEqual(await layoutFiles(layout));

    await run("skopeo", [
      "copy",
      "--dest-tls-verify=false",
      `oci:${layout}:1.0`,
      `docker://${registry.address}/from-skopeo/hello:2`,
    ]);
    const deployed = await deployRef("skopeo-hello", `oci://${registry.address}/from-skopeo/hello:2`);
    expect(deployed.status).toBe(201);
    const record = await deployed.json();
    expect(record.artifact).toEqual({
      digest,
      size: expect.any(Number),
      ref: `${registry.address}/from-skopeo/hello:2`,
    });
    // Settings come from the joule.json the artifact carries: hello is public with a greeting.
    expect(record).toMatchObject({ public: true, env: { GREETING: "Hello from Joule" } });
    const answer = await t.anonymous("/fn/skopeo-hello/?name=oci");
    expect(await answer.json()).toMatchObject({ greeting: "Hello from Joule, oci!" });
  });

  it("deploys by tag once, records the digest, and never pulls a digest it has again", async () => {
    await jouleJson(["push", layout, `${registry.address}/pinned/hello:stable`]);
    const deployed = await jouleJson([
      "deploy",
      `oci://${registry.address}/pinned/hello:stable`,
      "--host",
      t.url,
      "--key",
      t.key,
    ]);
    expect(deployed).toMatchObject({ name: "hello", artifact: { digest } });
    // Overrides in the request win over the artifact's joule.json.
    const overridden = await deployRef("pinned", `oci://${registry.address}/pinned/hello@${digest}`, {
      env: { GREETING: "Pinned" },
    });
    expect(overridden.status).toBe(201);
    expect(await (await t.fetch("/fn/pinned/?name=x")).json()).toMatchObject({ greeting: "Pinned, x!" });

    // The registry loses the layer: a host that has the digest deploys it all the same, without pulling.
    const manifest = JSON.parse((await readFile(join(layout, "blobs/sha256", digest.slice(7)))).toString());
    const removed = await fetch(`http://${registry.address}/v2/pinned/hello/blobs/${manifest.layers[0].digest}`, {
      method: "DELETE",
    });
    expect(removed.status).toBe(202);
    const again = await deployRef("pinned-again", `oci://${registry.address}/pinned/hello:stable`);
    expect(again.status).toBe(201);
    expect((await again.json()).artifact.digest).toBe(digest);
    // A host without it cannot: the layer is gone from the registry.
    const other = await startTestHost({ privateRegistries: registry.address });
    try {
      const refused = await other.fetch("/v1/functions/x", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ref: `oci://${registry.address}/pinned/hello:stable` }),
      });
      expect(refused.status).toBe(404);
      expect((await refused.json()).error.code).toBe("JOULE_ERR_OCI_NOT_FOUND");
      expect(await readdir(join(other.dataDir, "functions"))).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it("ships capabilities.files as one layer per file: packaged, pushed, deployed by reference, read by the function", async () => {
    const reachLayout = join(work, "reach-oci");
    const packaged = await jouleJson(["package", reachDir(), "--out", reachLayout, "--tag", "1"]);
    expect(packaged.files.map((f: { annotations: Record<string, string> }) => f.annotations)).toEqual(
      ["/config.json", "/data/a.txt", "/data/nested/b.txt"].map((path) => ({
        "org.opencontainers.image.title": path,
      })),
    );
    expect(new Set(packaged.files.map((f: { mediaType: string }) => f.mediaType))).toEqual(
      new Set(["application/vnd.joule.file.v1"]),
    );
    const ref = `${registry.address}/functions/reach:1`;
    // The component, three files and the config.
    expect(await jouleJson(["push", reachLayout, ref])).toMatchObject({ digest: packaged.digest, uploaded: 5 });

    const deployed = await deployRef("reach-oci", `oci://${ref}`);
    expect(deployed.status, await deployed.clone().text()).toBe(201);
    expect((await deployed.json()).files.map((f: { path: string }) => f.path)).toEqual([
      "/config.json",
      "/data/a.txt",
      "/data/nested/b.txt",
    ]);
    const read = await t.fetch(`/fn/reach-oci/file?${new URLSearchParams({ path: "/data/nested/b.txt" })}`);
    expect(await read.json()).toEqual({ ok: true, value: "nested asset\n" });

    // The host keeps the pulled artifact whole: pulled back from it, every blob is the same.
    const pulled = await jouleJson(
      ["pull", `${new URL(t.url).host}/functions/reach-oci:latest`, join(work, "reach-back"), "--username", "k"].concat(
        "--password-stdin",
      ),
      { input: t.key },
    );
    expect(pulled.digest).toBe(packaged.digest);
    expect(await layoutFiles(join(work, "reach-back"))).toEqual(await layoutFiles(reachLayout));

    // Narrowed to one file, the function ships one; the host keeps the artifact whole across a restart.
    const other = await startTestHost({ privateRegistries: registry.address });
    try {
      const narrowed = await other.fetch("/v1/functions/reach", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          ref: `oci://${ref}`,
          narrow: { files: { "/config.json": "config.json" } },
        }),
      });
      expect(narrowed.status, await narrowed.clone().text()).toBe(201);
      expect((await narrowed.json()).files.map((f: { path: string }) => f.path)).toEqual(["/config.json"]);
      await other.restart();
      const back = await jouleJson(
        [
          "pull",
          `${new URL(other.url).host}/functions/reach:latest`,
          join(work, "reach-narrowed"),
          "--username",
          "k",
        ].concat("--password-stdin"),
        { input: other.key },
      );
      expect(await layoutFiles(join(work, "reach-narrowed"))).toEqual(await layoutFiles(reachLayout));
      expect(back.digest).toBe(packaged.digest);
    } finally {
      await other.close();
    }
  });

  it("stores each function as the artifact it would push, in an OCI layout in the data dir", async () => {
    const record = await (await t.fetch("/v1/functions/skopeo-hello")).json();
    const index = JSON.parse(await readFile(join(t.dataDir, "index.json"), "utf8"));
    expect(index.manifests).toContainEqual(
      expect.objectContaining({
        digest: record.artifact.digest,
        annotations: { "org.opencontainers.image.ref.name": "skopeo-hello" },
      }),
    );
    expect(JSON.parse(await readFile(join(t.dataDir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    // An uploaded component is packaged by the host itself.
    const uploaded = await t.deploy("tiny");
    expect((await uploaded.json()).artifact.digest).toMatch(/^sha256:/);
  });

  it("serves its store over the distribution API: what it stores is the artifact it would push", async () => {
    const record = await (await t.fetch("/v1/functions/skopeo-hello")).json();
    const hostAddress = new URL(t.url).host;
    const anonymous = await fetch(`${t.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toBe('Basic realm="joule"');

    const pulled = await jouleJson(
      [
        "pull",
        `${hostAddress}/functions/skopeo-hello:latest`,
        join(work, "from-host"),
        "--username",
        "k",
        "--password-stdin",
      ],
      { input: t.key },
    );
    expect(pulled.digest).toBe(record.artifact.digest);
    expect(await layoutFiles(join(work, "from-host"))).toEqual(await layoutFiles(layout));

    // Out of the host and into a registry with skopeo, then back: the same digest all the way.
    await run("skopeo", [
      "copy",
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      "--src-creds",
      `k:${t.key}`,
      `docker://${hostAddress}/functions/skopeo-hello:latest`,
      `docker://${registry.address}/exported/hello:1`,
    ]);
    const exported = await jouleJson(["pull", `${registry.address}/exported/hello:1`, join(work, "exported")]);
    expect(exported.digest).toBe(record.artifact.digest);

    const { key } = t.host.keys.create({ name: "no-artifacts", scopes: ["functions:manage"] });
    const denied = await fetch(`${t.url}/v2/functions/skopeo-hello/manifests/latest`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(denied.status).toBe(403);
  });

  it("answers with coded errors: unknown tag, index instead of manifest, wrong media type, no registry, no scope", async () => {
    const missing = await deployRef("nope", `oci://${registry.address}/functions/hello:missing`);
    expect([missing.status, (await missing.json()).error.code]).toEqual([404, "JOULE_ERR_OCI_NOT_FOUND"]);

    // An image index naming the artifact, put into the real registry.
    const manifestBytes = await readFile(join(layout, "blobs/sha256", digest.slice(7)));
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: manifestBytes.byteLength }],
    });
    const put = await fetch(`http://${registry.address}/v2/functions/hello/manifests/list`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
      body: index,
    });
    expect(put.status).toBe(201);
    const listed = await deployRef("listed", `oci://${registry.address}/functions/hello:list`);
    expect([listed.status, (await listed.json()).error.code]).toEqual([400, "JOULE_ERR_OCI_INDEX_NOT_MANIFEST"]);

    // A container image's config media type: not a Wasm artifact.
    const manifest = JSON.parse(manifestBytes.toString());
    const configBytes = await readFile(join(layout, "blobs/sha256", manifest.config.digest.slice(7)));
    const upload = await fetch(`http://${registry.address}/v2/functions/hello/blobs/uploads/`, { method: "POST" });
    const location = new URL(upload.headers.get("location") as string, `http://${registry.address}`);
    location.searchParams.set("digest", manifest.config.digest);
    await fetch(location, { method: "PUT", body: configBytes });
    const image = {
      ...manifest,
      config: { ...manifest.config, mediaType: "application/vnd.oci.image.config.v1+json" },
    };
    const putImage = await fetch(`http://${registry.address}/v2/functions/hello/manifests/image`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: JSON.stringify(image),
    });
    expect(putImage.status).toBe(201);
    const wrong = await deployRef("wrong", `oci://${registry.address}/functions/hello:image`);
    expect([wrong.status, (await wrong.json()).error.code]).toEqual([400, "JOULE_ERR_OCI_MEDIA_TYPE"]);

    const down = await joule(["pull", "127.0.0.1:1/functions/hello:1.0", join(work, "down")]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("JOULE_ERR_OCI_REGISTRY_UNREACHABLE");

    const bad = await deployRef("bad", "oci://not a ref");
    expect((await bad.json()).error.code).toBe("JOULE_ERR_OCI_REFERENCE_INVALID");

    // Deploy by reference makes the host fetch a URL: it needs artifacts:manage too.
    const { key } = t.host.keys.create({ name: "deployer", scopes: ["functions:manage"] });
    const denied = await deployRef("denied", `oci://${registry.address}/functions/hello:1.0`, {}, key);
    expect([denied.status, (await denied.json()).error.code]).toEqual([403, "JOULE_ERR_PERMISSION_DENIED"]);
  });
});
