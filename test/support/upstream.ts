/**
 * A tiny HTTP server for outbound-HTTP tests: echoes what it got, redirects
 * where told, answers slowly, big or never. On loopback by default; on
 * another address only inside a network namespace the test made itself
 * (test/support/netns.ts), where that address is the namespace's own.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, isIPv6 } from "node:net";

export interface Upstream {
  port: number;
  origin: string;
  /** Requests received, in order. */
  seen: Array<{ method: string; url: string; headers: IncomingMessage["headers"] }>;
  /** `/wait` requests being answered right now, and the most there ever were at once. */
  waiting: { now: number; most: number };
  /** `/wait` requests whose client closed the connection before the answer. */
  abandoned: number;
  close(): Promise<void>;
}

export interface UpstreamOptions {
  /** The address to listen on: loopback, or one a test's own network namespace holds. */
  host?: string;
  /** 0 (the default) for any free port; a given port lets two servers share it on different addresses. */
  port?: number;
}

export async function startUpstream({ host = "127.0.0.1", port: wanted = 0 }: UpstreamOptions = {}): Promise<Upstream> {
  const seen: Upstream["seen"] = [];
  const waiting = { now: 0, most: 0 };
  let abandoned = 0;
  const server: Server = createServer(async (request, response) => {
    const url = new URL(request.url ?? "/", "http://upstream");
    seen.push({ method: request.method ?? "", url: url.pathname + url.search, headers: request.headers });
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    switch (url.pathname) {
      case "/wait": {
        // Answers after `ms`, counting how many wait at once (the caller's concurrency).
        waiting.now++;
        waiting.most = Math.max(waiting.most, waiting.now);
        const timer = setTimeout(() => response.end("waited"), Number(url.searchParams.get("ms") ?? "1000"));
        response.on("close", () => {
          waiting.now--;
          if (!response.writableFinished) {
            abandoned++;
            clearTimeout(timer);
          }
        });
        return;
      }
      case "/echo":
        response.setHeader("content-type", "application/json");
        response.setHeader("set-cookie", "session=upstream-secret");
        response.end(JSON.stringify({ method: request.method, headers: request.headers, body }));
        return;
      case "/redirect":
        response.statusCode = Number(url.searchParams.get("status") ?? "302");
        response.setHeader("location", url.searchParams.get("to") ?? "/echo");
        response.end();
        return;
      case "/loop":
        response.statusCode = 302;
        response.setHeader("location", "/loop");
        response.end();
        return;
      case "/big":
        response.end(Buffer.alloc(Number(url.searchParams.get("bytes") ?? "0"), 120));
        return;
      case "/never":
        return; // no answer: the caller's timeout must end it
      default:
        response.end("hello from upstream");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(wanted, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    seen,
    waiting,
    get abandoned() {
      return abandoned;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
