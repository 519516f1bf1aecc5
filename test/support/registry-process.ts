/**
 * A real CNCF distribution registry (Debian's `docker-registry`, 2.8) on a
 * loopback port with a fresh storage dir, optionally behind htpasswd Basic
 * auth; and a Bearer-token front for it (a token service plus a proxy that
 * demands the token), since distribution's own token auth needs a JWT
 * issuer. Used by the OCI tests (one registry per file) and bench/oci.ts.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TestRegistry {
  /** host:port */
  address: string;
  dir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startRegistry(options: { user?: string; password?: string } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "joule-registry-"));
  let child: ChildProcess | undefined;
  let auth = "";
  if (options.user && options.password) {
    const { stdout } = await run("htpasswd", ["-Bbn", options.user, options.password]);
    await writeFile(join(dir, "htpasswd"), stdout);
    auth = `auth:\n  htpasswd:\n    realm: joule-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "data")}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`;
    await writeFile(join(dir, "config.yml"), config);
    child = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: "ignore" });
    const address = `127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const ok = await fetch(`http://${address}/v2/`).then(
        (r) => r.status === 200 || r.status === 401,
        () => false,
      );
      if (ok) {
        const running = child;
        return {
          address,
          dir,
          async stop() {
            running.kill("SIGTERM");
            await new Promise((resolve) =>
              running.exitCode !== null ? resolve(undefined) : running.once("exit", resolve),
            );
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill("SIGKILL");
  }
  throw new Error("docker-registry did not start");
}

export interface BearerFront {
  address: string;
  /** Tokens handed out, with the scope each was asked for. */
  issued: Array<{ scope: string | null; service: string | null }>;
  stop(): Promise<void>;
}

/**
 * A registry front that speaks the Bearer flow: every /v2/ request without a
 * token it issued gets 401 with a `WWW-Authenticate: Bearer realm=…` challenge;
 * its /token endpoint hands out tokens for Basic `user:password`, and 401 otherwise.
 */
export async function startBearerFront(upstream: string, user: string, password: string): Promise<BearerFront> {
  const tokens = new Set<string>();
  const issued: BearerFront["issued"] = [];
  let address = "";
  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? "/", `http://${address}`);
    if (url.pathname === "/token") {
      const expected = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
        return;
      }
      const token = randomBytes(16).toString("hex");
      tokens.add(token);
      issued.push({ scope: url.searchParams.get("scope"), service: url.searchParams.get("service") });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const auth = req.headers.authorization ?? "";
    if (!auth.startsWith("Bearer ") || !tokens.has(auth.slice(7))) {
      const repo = /^\/v2\/(.+)\/(?:blobs|manifests)\//.exec(url.pathname)?.[1];
      res
        .writeHead(401, {
          "www-authenticate": `Bearer realm="http://${address}/token",service="joule-test"${repo ? `,scope="repository:${repo}:pull,push"` : ""}`,
          "content-type": "application/json",
        })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const [host, port] = upstream.split(":");
    const headers = { ...req.headers, host: upstream };
    delete headers.authorization;
    const proxied = httpRequest({ host, port: Number(port), method: req.method, path: req.url, headers }, (up) => {
      const out = { ...up.headers };
      // Upload locations point at the upstream: send them back through the front.
      if (typeof out.location === "string")
        out.location = out.location.replace(`http://${upstream}`, `http://${address}`);
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    proxied.on("error", () => res.writeHead(502).end());
    req.pipe(proxied);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    issued,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
