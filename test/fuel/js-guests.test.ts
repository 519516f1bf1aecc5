/**
 * The JS example guests give the same responses metered and unmetered:
 * their components are transpiled once, and each request runs on an
 * instance built from the original core modules and on one built from the
 * metered ones.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { transpile } from "@bytecodealliance/jco";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImports } from "../../host/src/capabilities/index.ts";
import { LogSink } from "../../host/src/capabilities/log-sink.ts";
import { instrument } from "../../host/src/fuel/instrument.ts";
import { componentPath } from "../support/host.ts";

interface Handler {
  handle(req: unknown, inv: unknown): { status: number; headers: Array<[string, string]>; body: Uint8Array };
}
interface Glue {
  instantiate(
    get: (name: string) => WebAssembly.Module,
    imports: unknown,
    core: (m: WebAssembly.Module, i?: WebAssembly.Imports) => WebAssembly.Instance,
  ): Record<string, Handler>;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "joule-js-diff-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function pair(name: string): Promise<{ plain: Handler; metered: Handler }> {
  const { files } = (await transpile(await readFile(componentPath(name)), {
    name: "component",
    instantiation: { tag: "sync" },
    noTypescript: true,
    map: {},
  } as never)) as unknown as { files: Record<string, Uint8Array> };
  const gluePath = join(dir, `${name}.mjs`);
  await writeFile(gluePath, files["component.js"] as Uint8Array);
  const glue = (await import(pathToFileURL(gluePath).href)) as Glue;
  const make = (meter: boolean): Handler => {
    const modules: Record<string, WebAssembly.Module> = {};
    for (const [file, bytes] of Object.entries(files)) {
      if (!file.endsWith(".wasm")) continue;
      const code = meter ? instrument(bytes, { initialFuel: 1n << 60n }).bytes : bytes;
      modules[file] = new WebAssembly.Module(code as Uint8Array<ArrayBuffer>);
    }
    const root = glue.instantiate(
      (file) => modules[file] as WebAssembly.Module,
      buildImports({
        env: { GREETING: "Hi", API_VERSION: "2" },
        sink: new LogSink(65536),
        kv: { stores: [] },
        denials: [],
      }),
      (m, i) => {
        const instance = new WebAssembly.Instance(m, i);
        for (const [exported, value] of Object.entries(instance.exports)) {
          if (exported.startsWith("joule:fuel") && value instanceof WebAssembly.Global) value.value = 1n << 60n;
        }
        return instance;
      },
    );
    return root["joule:function/handler@0.2.0"] as Handler;
  };
  return { plain: make(false), metered: make(true) };
}

const text = new TextEncoder();
const req = (method: string, path: string, body = "") => ({
  method,
  url: `http://test/fn/guest${path}`,
  mount: "/fn/guest",
  headers: [["content-type", "application/json"]],
  body: text.encode(body),
  bodyStreamed: false,
});
const view = (r: { status: number; headers: Array<[string, string]>; body: Uint8Array }) => ({
  status: r.status,
  headers: r.headers,
  body: Buffer.from(r.body).toString("base64"),
});

const REQUESTS: Record<string, Array<ReturnType<typeof req>>> = {
  hello: [req("GET", "/"), req("GET", "/a/b?name=Z")],
  "json-api": [
    req("GET", "/"),
    req("POST", "/sum", '{"numbers":[1,2,3]}'),
    req("POST", "/sum", "nope"),
    req("GET", "/greet/J%C3%BCrgen"),
    req("DELETE", "/sum"),
    req("POST", "/words", "one two  three"),
  ],
  echo: [req("POST", "/", "x".repeat(10_000)), req("PUT", "/?digest", "\u0000\u00ff binary")],
};

describe("metering the JS example guests", () => {
  it.each(Object.keys(REQUESTS))("%s answers the same metered and unmetered", async (name) => {
    const { plain, metered } = await pair(name);
    for (const request of REQUESTS[name] ?? []) {
      const inv = { requestId: "r", functionName: name };
      expect(view(metered.handle(request, inv)), `${request.method} ${request.url}`).toEqual(
        view(plain.handle(request, inv)),
      );
    }
  });
});
