/**
 * Starts a real Joule host for a test: loopback, an ephemeral port, a fresh
 * data directory, its log captured so tests can read what it wrote.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { inject } from "vitest";
import { collectFiles, FILE_FIELD } from "../../host/src/capabilities/files-bundle.ts";
import { type ConfigInput, loadConfig } from "../../host/src/config.ts";
import { type Host, startHost } from "../../host/src/host.ts";

export interface TestHost {
  host: Host;
  url: string;
  dataDir: string;
  logs: Array<Record<string, unknown>>;
  /** The API key with every scope made on the data dir's first start. */
  key: string;
  /** fetch relative to the host, with `key` unless the request sets its own authorization. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** fetch relative to the host without credentials. */
  anonymous(path: string, init?: RequestInit): Promise<Response>;
  /**
   * Deploys a component as the CLI does, by upload: `component` (a path, else
   * the one global setup built under `name`), the files of
   * `capabilities.files` read from `functionDir`, any other deploy settings
   * given (env, limits, isolation, snapshot, capabilities...), with `key`
   * (the bootstrap key when not given).
   */
  deploy(name: string, options?: DeployOptions): Promise<Response>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export type DeployOptions = { component?: string; functionDir?: string; key?: string } & Record<string, unknown>;

/** The multipart body of an upload deploy, as `joule deploy` sends it. */
export async function uploadForm(
  component: string,
  settings: Record<string, unknown>,
  functionDir?: string,
): Promise<FormData> {
  const form = new FormData();
  form.set("config", JSON.stringify(settings));
  form.set("component", new Blob([new Uint8Array(await readFile(component))]), "component.wasm");
  const mounts = (settings.capabilities as { files?: Record<string, string> } | undefined)?.files ?? {};
  if (functionDir !== undefined) {
    for (const file of await collectFiles(functionDir, mounts)) {
      form.append(`${FILE_FIELD}${file.path}`, new Blob([new Uint8Array(file.bytes)]), "file");
    }
  }
  return form;
}

export function componentPath(name: string): string {
  const path = inject("components")[name];
  if (!path) throw new Error(`no test component named ${name}`);
  return path;
}

/** The directory of the reach guest (test/fixtures/guests/reach), whose shipped files deploys read. */
export function reachDir(): string {
  return dirname(dirname(componentPath("reach")));
}

export function componentBytes(name: string): Promise<Buffer> {
  return readFile(componentPath(name));
}

export async function startTestHost(overrides: ConfigInput = {}, dataDir?: string): Promise<TestHost> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "joule-test-")));
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const config = () =>
    loadConfig({ host: "127.0.0.1", port: 0, workers: 2, logLevel: "info", ...overrides, dataDir: dir });
  let host = await startHost(config(), undefined, stream);
  const key = host.bootstrapKey;
  if (!key) throw new Error("the test host's data dir already had keys; start it on a fresh one");
  const test: TestHost = {
    key,
    get host() {
      return host;
    },
    get url() {
      return host.url;
    },
    dataDir: dir,
    logs,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${key}`);
      return fetch(new URL(path, host.url), { ...init, headers });
    },
    anonymous: (path, init) => fetch(new URL(path, host.url), init),
    deploy: async (name, { component, functionDir, key: as, ...settings } = {}) =>
      test.fetch(`/v1/functions/${name}`, {
        method: "PUT",
        body: await uploadForm(component ?? componentPath(name), settings, functionDir),
        ...(as ? { headers: { authorization: `Bearer ${as}` } } : {}),
      }),
    async restart() {
      await host.close();
      host = await startHost(config(), undefined, stream);
    },
    async close() {
      await host.close();
      if (dataDir) return;
      await rm(dir, { recursive: true, force: true });
      // The secrets key made at first start lives beside the data dir, never in it.
      await rm(`${dir}.secrets-key`, { force: true });
    },
  };
  return test;
}
