import { defineFunction } from "@joule/sdk";

/** Greetings by language, built once by init() at deploy and restored from the snapshot ever after. */
let greetings: Map<string, string> | undefined;

export default defineFunction({
  init(env) {
    greetings = new Map([
      ["en", env.GREETING ?? "Hello"],
      ["fr", "Bonjour"],
      ["de", "Hallo"],
      ["es", "Hola"],
      ["ja", "こんにちは"],
    ]);
  },
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    ctx.log("hello", url.pathname);
    const name = url.searchParams.get("name") ?? "world";
    const greeting = greetings?.get(url.searchParams.get("lang") ?? "en") ?? env.GREETING ?? "Hello";
    return Response.json({ greeting: `${greeting}, ${name}!`, path: url.pathname });
  },
});
