/**
 * The operator's metrics listener (JOULE_METRICS_ADDR): GET /metrics with
 * every series and no key, on an address the operator keeps to its own
 * network, as node_exporter and most Prometheus targets are scraped. It
 * serves nothing else.
 */
import { createServer, type Server } from "node:http";
import type { HostMetrics } from "./metrics.ts";

export async function listenForMetrics(
  address: string,
  metrics: HostMetrics,
): Promise<{ url: string; close(): Promise<void> }> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(colon + 1));
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    metrics.exposition().then(
      (text) => response.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      () => response.writeHead(500, { "content-type": "text/plain" }).end("metrics could not be collected\n"),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  const shown =
    typeof bound === "object" && bound
      ? `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`
      : address;
  return {
    url: `http://${shown}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
