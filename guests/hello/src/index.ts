import { defineFunction } from "@joule/sdk";

export default defineFunction({
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    ctx.log("hello", url.pathname);
    const name = url.searchParams.get("name") ?? "world";
    return Response.json({ greeting: `${env.GREETING ?? "Hello"}, ${name}!`, path: url.pathname });
  },
});
