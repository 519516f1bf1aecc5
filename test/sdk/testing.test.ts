/**
 * `@joule/sdk/testing`: a function's handler called directly, no host, no
 * build: env from joule.json plus overrides, kv in memory with the grants
 * of joule.json, shipped files read from the function's folder, logs
 * captured. The guests are the real examples and fixtures.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import hello from "../../guests/hello/src/index.ts";
import { CapabilityDeniedError } from "../../sdk/src/index.ts";
import { createContext, createEnv } from "../../sdk/src/testing.ts";
import reach from "../fixtures/guests/reach/src/index.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const HELLO = join(ROOT, "guests/hello");
const REACH = join(ROOT, "test/fixtures/guests/reach");

describe("@joule/sdk/testing", () => {
  it("runs a handler with joule.json's env, overrides, init and captured logs", async () => {
    const env = createEnv({}, { dir: HELLO });
    expect(env).toEqual({ GREETING: "Hello from Joule" });
    expect(Object.isFrozen(env)).toBe(true);
    const { ctx, logs } = createContext({ dir: HELLO });
    expect(ctx.functionName).toBe("hello");
    await hello.init?.(createEnv({ GREETING: "Hi" }, { dir: HELLO }));
    const response = await hello.fetch(new Request("http://localhost/a?name=test"), env, ctx);
    expect(await response.json()).toEqual({ greeting: "Hi, test!", path: "/a" });
    expect(logs).toEqual([{ level: "info", message: "hello /a" }]);
  });

  it("gives kv in memory for the stores joule.json grants, with TTLs, and denies the others", async () => {
    const { ctx, stores } = createContext({ dir: REACH });
    const call = async (query: string) =>
      (await reach.fetch(new Request(`http://localhost/kv?${query}`), createEnv({}, { dir: REACH }), ctx)).json();
    expect(await call("store=cache&op=set&key=a&value=1")).toEqual({ ok: true });
    expect(await call("store=cache&op=get&key=a")).toEqual({ ok: true, value: "1" });
    expect(await call("store=cache&op=list&prefix=")).toEqual({ ok: true, keys: ["a"] });
    expect(new TextDecoder().decode(stores.get("cache")?.get("a")?.value)).toBe("1");
    expect(await call("store=cache&op=set&key=b&value=2&ttl=1")).toEqual({ ok: true });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await call("store=cache&op=get&key=b")).toEqual({ ok: true, value: null });
    expect(() => ctx.kv("not-granted")).toThrow(CapabilityDeniedError);
    const seeded = createContext({ dir: REACH, kv: { cache: { greeting: { hello: "world" } } } });
    expect(await seeded.ctx.kv("cache").getJSON("greeting")).toEqual({ hello: "world" });
  });

  it("reads the shipped files from the function's folder, and nothing outside its mounts", async () => {
    const { ctx } = createContext({ dir: REACH });
    const env = createEnv({}, { dir: REACH });
    const file = await (await reach.fetch(new Request("http://localhost/file?path=/data/a.txt"), env, ctx)).json();
    expect(file).toEqual({ ok: true, value: expect.any(String) });
    expect(await ctx.files.list("/data/")).toEqual(["/data/a.txt", "/data/nested/b.txt"]);
    expect(await ctx.files.json("/config.json")).toEqual(expect.any(Object));
    for (const path of ["/data/../joule.json", "/etc/passwd", "/joule.json"]) {
      await expect(ctx.files.text(path)).rejects.toBeInstanceOf(CapabilityDeniedError);
    }
  });
});
