/**
 * Where a deploy by reference may make the host connect (issue 13, item 5):
 * only public addresses, and a registry the operator lists in
 * JOULE_PRIVATE_REGISTRIES; metadata addresses never. Every connection is
 * checked: the registry, its token realm, each redirect hop.
 *
 * All traffic stays on loopback. Refusals of other addresses (10.0.0.1,
 * 169.254.169.254) cannot be observed from here, since nothing of ours
 * listens there and nothing may be sent there: each such case comes after a
 * loopback case of the same path that proves the refusal happens before any
 * connection, and the host's log shows the policy judged the address.
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkDestination } from "../../host/src/net/net-policy.ts";
import { resolver } from "../../host/src/net/resolver.ts";
import { type Artifact, packageFunction } from "../../host/src/oci/artifact.ts";
import { parseReference } from "../../host/src/oci/reference.ts";
import { listedRegistries } from "../../host/src/oci/registry-address-policy.ts";
import { push } from "../../host/src/oci/transfer.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";
import { registrySkip, startRegistry, type TestRegistry } from "../support/registry.ts";
import { startTcpCounter, type TcpCounter } from "../support/tcp-counter.ts";

const skip = registrySkip();
const REFUSED = "a registry connection was refused by the address policy";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** A small HTTP server that records what it was asked and answers with `handle`. */
interface Recorder {
  address: string;
  seen: string[];
  close(): Promise<void>;
}

async function startRecorder(
  host: string,
  handle: (request: IncomingMessage, response: ServerResponse) => void | Promise<void>,
): Promise<Recorder> {
  const seen: string[] = [];
  const server: Server = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    void handle(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    address: `${host}:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function blobsOf(artifact: Artifact): Map<string, Uint8Array> {
  return new Map([artifact.config, artifact.layer].map((blob) => [blob.descriptor.digest, blob.bytes]));
}

let t: TestHost;
let dns: DnsServer;
/** The registry front: manifests itself, blobs by a 307 to storage, or a Bearer challenge. */
let front: Recorder;
/** Blob storage on another loopback address: one port listed, one not. */
let listedStorage: Recorder;
let unlistedStorage: Recorder;
/** One artifact per repository of the front, each its own digest. */
const artifacts = new Map<string, Artifact>();

function deployRef(name: string, ref: string): Promise<Response> {
  return t.fetch(`/v1/functions/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ref }),
  });
}

async function refusal(response: Response): Promise<{ status: number; code: string; message: string }> {
  const { error } = await response.json();
  return { status: response.status, code: error?.code, message: error?.message ?? "" };
}

/** What the policy logged for the operator about a destination (host:port). */
function logged(destination: string): Array<Record<string, unknown>> {
  return t.logs.filter((line) => line.msg === REFUSED && line.destination === destination);
}

/** tiny answers while refusals happen: a refused pull holds nothing the invocations need. */
async function tinyAnswers(times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const answer = await t.fetch("/fn/tiny/");
    expect([answer.status, await answer.text()]).toEqual([200, "tiny"]);
  }
}

beforeAll(async () => {
  const tiny = await readFile(componentPath("tiny"));
  for (const repo of ["to-listed", "to-unlisted", "bearer"]) {
    artifacts.set(repo, await packageFunction(tiny, { name: repo, public: true }));
  }
  const storage = (request: IncomingMessage, response: ServerResponse) => {
    const digest = /^\/blobs\/(sha256:[0-9a-f]{64})$/.exec(request.url ?? "")?.[1] ?? "";
    const bytes = [...artifacts.values()].map((a) => blobsOf(a).get(digest)).find(Boolean);
    if (!bytes) return void response.writeHead(404).end();
    response.writeHead(200, { "content-length": String(bytes.byteLength) }).end(Buffer.from(bytes));
  };
  [listedStorage, unlistedStorage] = await Promise.all([
    startRecorder("127.0.0.2", storage),
    startRecorder("127.0.0.2", storage),
  ]);
  front = await startRecorder("127.0.0.1", async (request, response) => {
    const match = /^\/v2\/([a-z-]+)\/(manifests|blobs)\/(.+)$/.exec(request.url ?? "");
    const artifact = artifacts.get(match?.[1] ?? "");
    if (!match || !artifact) return void response.writeHead(request.url === "/v2/" ? 200 : 404).end();
    const [, repo, kind, ref] = match;
    if (repo === "bearer") {
      // The token service is on an address nobody listed.
      const realm = `http://${unlistedStorage.address}/token`;
      return void response.writeHead(401, { "www-authenticate": `Bearer realm="${realm}",service="test"` }).end();
    }
    const digest = artifact.manifest.descriptor.digest;
    if (kind === "manifests") {
      if (ref !== "1" && ref !== digest) return void response.writeHead(404).end();
      const body = Buffer.from(artifact.manifest.bytes);
      response.writeHead(200, {
        "content-type": MANIFEST,
        "docker-content-digest": digest,
        "content-length": String(body.byteLength),
      });
      return void response.end(request.method === "HEAD" ? undefined : body);
    }
    // Registries send blob downloads to storage; the hop is a connection of its own. A pause, so
    // that the refusal is under way while tiny is invoked.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const storageAddress = repo === "to-listed" ? listedStorage.address : unlistedStorage.address;
    response.writeHead(307, { location: `http://${storageAddress}/blobs/${ref}` }).end();
  });
  dns = await startDnsServer((name) => {
    if (name === "loop.test") return ["127.0.0.1"];
    if (name === "internal.test") return ["10.0.0.1"];
    if (name === "metadata.test" || name === "listed-metadata.test") return ["169.254.169.254"];
    return [];
  });
  t = await startTestHost({
    dnsServers: dns.address,
    // The front and one storage port are trusted; so is a name that (hostile DNS) answers metadata.
    privateRegistries: [front.address, listedStorage.address, "listed-metadata.test:5000"].join(","),
  });
  expect((await t.deploy("tiny")).status).toBe(201);
});
afterAll(async () => {
  await t?.close();
  await Promise.all([dns?.close(), front?.close(), listedStorage?.close(), unlistedStorage?.close()]);
});

describe("where a deploy by reference may connect", () => {
  it("refuses a name that resolves to an unlisted special address before any connection, and logs why", async () => {
    // loop.test answers 127.0.0.1, where a counter in front of the listed front sees every connection.
    const counter = await startTcpCounter(front.address);
    try {
      const [refused] = await Promise.all([
        deployRef("loop", `oci://loop.test:${counter.port}/to-listed:1`),
        tinyAnswers(3),
      ]);
      expect(await refusal(refused)).toEqual({
        status: 403,
        code: "JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED",
        message: expect.stringContaining(`loop.test:${counter.port}`),
      });
      expect(counter.connections).toBe(0);
      expect(dns.asked.get("loop.test")).toBeGreaterThan(0);
      expect(logged(`loop.test:${counter.port}`)).toEqual([
        expect.objectContaining({ address: "127.0.0.1", kind: "loopback" }),
      ]);
    } finally {
      await counter.close();
    }

    // The same path, for addresses that cannot be watched: private, metadata, and metadata behind a
    // listed name. First the same check in-process, so nothing is ever sent there if it would pass.
    const exempt = listedRegistries(["listed-metadata.test:5000"]);
    for (const [hostname, port] of [
      ["internal.test", 5000],
      ["metadata.test", 443],
      ["listed-metadata.test", 5000],
      ["169.254.169.254", 443],
      ["10.0.0.1", 5000],
    ] as const) {
      const checked = await checkDestination({ hostname, port }, resolver([dns.address]), exempt);
      expect(checked.allowed, `${hostname}:${port}`).toBe(false);
    }
    for (const [ref, destination, address, kind] of [
      ["internal.test:5000/functions/x:1", "internal.test:5000", "10.0.0.1", "private"],
      ["metadata.test/functions/x:1", "metadata.test:443", "169.254.169.254", "metadata"],
      ["listed-metadata.test:5000/functions/x:1", "listed-metadata.test:5000", "169.254.169.254", "metadata"],
      ["169.254.169.254/latest/meta-data:1", "169.254.169.254:443", "169.254.169.254", "metadata"],
      ["10.0.0.1:5000/functions/x:1", "10.0.0.1:5000", "10.0.0.1", "private"],
    ] as const) {
      const [refused] = await Promise.all([deployRef("x", `oci://${ref}`), tinyAnswers(1)]);
      const { status, code, message } = await refusal(refused);
      expect([status, code], ref).toEqual([403, "JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED"]);
      // The caller learns the place it named, not what a name resolves to on the host's network.
      if (!destination.startsWith(address)) expect(message).not.toContain(address);
      expect(logged(destination), ref).toEqual([expect.objectContaining({ address, kind })]);
    }
    expect(dns.asked.get("internal.test")).toBeGreaterThan(0);
    expect((await t.fetch("/v1/functions/x")).status).toBe(404);
  });

  it("checks every redirect hop: a blob sent to an unlisted address is refused there, one sent to a listed place arrives", async () => {
    const [refused] = await Promise.all([
      deployRef("to-unlisted", `oci://${front.address}/to-unlisted:1`),
      tinyAnswers(3),
    ]);
    expect(await refusal(refused)).toEqual({
      status: 403,
      code: "JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED",
      message: expect.stringContaining(unlistedStorage.address),
    });
    // The front answered (manifest, then the redirect); the unlisted storage never saw a request.
    expect(front.seen.some((line) => line.startsWith("GET /v2/to-unlisted/blobs/"))).toBe(true);
    expect(unlistedStorage.seen).toEqual([]);
    expect(logged(unlistedStorage.address)).toEqual([
      expect.objectContaining({ address: "127.0.0.2", kind: "loopback" }),
    ]);

    const deployed = await deployRef("to-listed", `oci://${front.address}/to-listed:1`);
    expect(deployed.status, await deployed.clone().text()).toBe(201);
    expect(listedStorage.seen.length).toBeGreaterThan(0);
    expect(await (await t.anonymous("/fn/to-listed/")).text()).toBe("tiny");
  });

  it("checks the Bearer token realm: a listed registry cannot send the host's credentials to an unlisted one", async () => {
    const before = unlistedStorage.seen.length;
    const refused = await deployRef("bearer", `oci://${front.address}/bearer:1`);
    expect(await refusal(refused)).toMatchObject({ status: 403, code: "JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED" });
    expect(unlistedStorage.seen.length).toBe(before);
  });
});

describe.skipIf(skip !== "")("a real registry on loopback that the operator did not list", () => {
  let registry: TestRegistry;
  let counter: TcpCounter;

  beforeAll(async () => {
    registry = await startRegistry();
    counter = await startTcpCounter(registry.address);
  });
  afterAll(async () => {
    await counter?.close();
    await registry?.stop();
  });

  it("is refused with JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED, and sees no request", async () => {
    // Pushed through the counter (the CLI's path sets no policy): it counts what reaches the registry.
    const artifact = await packageFunction(await readFile(componentPath("tiny")), { name: "unlisted", public: true });
    await push(artifact, parseReference(`${counter.address}/functions/unlisted:1`));
    const afterPush = counter.connections;
    expect(afterPush).toBeGreaterThan(0);

    for (const registryAddress of [counter.address, registry.address]) {
      const [refused] = await Promise.all([
        deployRef("unlisted", `oci://${registryAddress}/functions/unlisted:1`),
        tinyAnswers(2),
      ]);
      const { status, code, message } = await refusal(refused);
      expect([status, code]).toEqual([403, "JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED"]);
      expect(message).toContain("JOULE_PRIVATE_REGISTRIES");
    }
    expect(counter.connections).toBe(afterPush);
    expect((await t.fetch("/v1/functions/unlisted")).status).toBe(404);
  });
});
