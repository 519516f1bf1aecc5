/**
 * The I/O-bound bench guest (bench/io.ts): it waits on an upstream, fans
 * out to it, sleeps, or streams server-sent events.
 */
import { defineFunction } from "@joule/sdk";

export default defineFunction({
  async fetch(request) {
    const url = new URL(request.url);
    const q = url.searchParams;
    switch (url.pathname) {
      case "/wait":
        return new Response(await (await fetch(q.get("url") ?? "")).text());
      case "/fan": {
        const n = Number(q.get("n") ?? "10");
        const bodies = await Promise.all(
          Array.from({ length: n }, async () => (await fetch(q.get("url") ?? "")).text()),
        );
        return Response.json({ n: bodies.length });
      }
      case "/sleep":
        await new Promise((resolve) => setTimeout(resolve, Number(q.get("ms") ?? "1000")));
        return new Response("slept");
      case "/sse": {
        const n = Number(q.get("n") ?? "5");
        const every = Number(q.get("every") ?? "100");
        let sent = 0;
        return new Response(
          new ReadableStream({
            async pull(controller) {
              if (sent > 0) await new Promise((resolve) => setTimeout(resolve, every));
              controller.enqueue(new TextEncoder().encode(`data: ${sent}\n\n`));
              if (++sent >= n) controller.close();
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      }
      default:
        return new Response("waiter");
    }
  },
});
