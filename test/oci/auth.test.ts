/**
 * Registries that want credentials: a real distribution registry behind
 * htpasswd Basic auth, and the Bearer token flow (a token service and a
 * front that demands its tokens, before the real registry).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joule, jouleJson } from "../support/cli.ts";
import { startTestHost } from "../support/host.ts";
import {
  type BearerFront,
  registrySkip,
  startBearerFront,
  startRegistry,
  type TestRegistry,
} from "../support/registry.ts";

const skip = registrySkip();
const USER = "joule";
const PASSWORD = "s3cret-registry-pass";

let basic: TestRegistry;
let open: TestRegistry;
let front: BearerFront;
let work: string;
let layout: string;
let authFile: string;
/** No credentials from the machine's own files: HOME and DOCKER_CONFIG point at an empty dir. */
let env: Record<string, string>;

describe.skipIf(skip !== "")("registries with credentials", () => {
  beforeAll(async () => {
    [basic, open] = await Promise.all([startRegistry({ user: USER, password: PASSWORD }), startRegistry()]);
    front = await startBearerFront(open.address, USER, PASSWORD);
    work = await mkdtemp(join(tmpdir(), "joule-oci-auth-"));
    env = { HOME: work, DOCKER_CONFIG: join(work, "docker"), REGISTRY_AUTH_FILE: "" };
    layout = join(work, "layout");
    await jouleJson(["package", "guests/hello", "--out", layout]);
    authFile = join(work, "auth.json");
    const auth = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
    await writeFile(authFile, JSON.stringify({ auths: { [basic.address]: { auth } } }));
  });
  afterAll(async () => {
    await front?.stop();
    await Promise.all([basic?.stop(), open?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it("Basic auth: refuses no or wrong credentials with a coded error; pushes and pulls with an auth file", async () => {
    const ref = `${basic.address}/private/hello:1`;
    const anonymous = await joule(["push", layout, ref], { env });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain("JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED");
    const wrong = await joule(["push", layout, ref, "--username", USER, "--password-stdin"], { env, input: "nope\n" });
    expect(wrong.stderr).toContain("JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED");

    const pushed = await jouleJson(["push", layout, ref, "--auth-file", authFile], { env });
    expect(pushed.uploaded).toBe(2);
    const pulled = await jouleJson(["pull", ref, join(work, "pulled"), "--username", USER, "--password-stdin"], {
      env,
      input: `${PASSWORD}\n`,
    });
    expect(pulled.digest).toBe(pushed.digest);
  });

  it("Basic auth: a host deploys by reference with JOULE_REGISTRY_AUTH_FILE, and says why without it", async () => {
    const ref = `oci://${basic.address}/private/hello:1`;
    await jouleJson(["push", layout, ref.slice(6), "--auth-file", authFile], { env });
    const without = await startTestHost({ privateRegistries: basic.address });
    const withAuth = await startTestHost({ registryAuthFile: authFile, privateRegistries: basic.address });
    try {
      const body = JSON.stringify({ ref });
      const headers = { "content-type": "application/json" };
      const refused = await without.fetch("/v1/functions/hello", { method: "PUT", headers, body });
      expect([refused.status, (await refused.json()).error.code]).toEqual([502, "JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED"]);
      const deployed = await withAuth.fetch("/v1/functions/hello", { method: "PUT", headers, body });
      expect(deployed.status).toBe(201);
      expect(await (await withAuth.anonymous("/fn/hello/?name=auth")).json()).toMatchObject({
        greeting: "Hello from Joule, auth!",
      });
    } finally {
      await Promise.all([without.close(), withAuth.close()]);
    }
  });

  it("Bearer: follows the challenge to the token service with the repository's scope, then pushes and pulls", async () => {
    const ref = `${front.address}/bearer/hello:1`;
    const denied = await joule(["push", layout, ref, "--username", USER, "--password-stdin"], { env, input: "bad\n" });
    expect(denied.stderr).toContain("JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED");
    const pushed = await jouleJson(["push", layout, ref, "--username", USER, "--password-stdin"], {
      env,
      input: PASSWORD,
    });
    expect(pushed.uploaded).toBe(2);
    expect(front.issued).toContainEqual({ scope: "repository:bearer/hello:pull,push", service: "joule-test" });
    const pulled = await jouleJson(["pull", ref, join(work, "bearer"), "--username", USER, "--password-stdin"], {
      env,
      input: PASSWORD,
    });
    expect(pulled.digest).toBe(pushed.digest);
    // What went through the front is in the real registry behind it.
    const direct = await jouleJson(["pull", `${open.address}/bearer/hello:1`, join(work, "direct")], { env });
    expect(direct.digest).toBe(pushed.digest);
  });
});
