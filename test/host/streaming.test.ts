/**
 * Streamed bodies: a response whose body is a stream reaches the client
 * chunk by chunk as the function writes it (server-sent events), with the
 * figures in trailers; a request body is read by the function as it
 * arrives; a failure after the first byte ends the response abnormally; a
 * client that goes away mid-stream cancels the invocation.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { componentPath, startTestHost, type TestHost } from "../support/host.ts";

let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ maxBodyBytes: 2 * 1024 * 1024 });
  const deployed = await t.deploy("stream", { component: componentPath("misbehave"), public: true });
  expect(deployed.status).toBe(201);
});
afterAll(() => t?.close());

interface Received {
  status: number;
  headers: IncomingMessage["headers"];
  trailers: Record<string, string | undefined>;
  /** Each chunk with the ms since the request was sent. */
  chunks: Array<{ text: string; at: number }>;
  complete: boolean;
}

/** A request over node:http, keeping when each chunk came, the trailers, and whether the body ended properly. */
function send(
  path: string,
  init: { method?: string; headers?: Record<string, string>; parts?: Array<string | Buffer>; pauseMs?: number } = {},
  onChunk?: (text: string, response: IncomingMessage) => void,
): Promise<Received> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, t.url), { method: init.method ?? "GET", headers: init.headers }, (res) => {
      const chunks: Received["chunks"] = [];
      res.on("data", (chunk: Buffer) => {
        const text = chunk.toString();
        chunks.push({ text, at: performance.now() - started });
        onChunk?.(text, res);
      });
      const finish = () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          trailers: res.trailers,
          chunks,
          complete: res.complete,
        });
      res.on("end", finish);
      res.on("aborted", finish);
      res.on("error", finish);
    });
    req.on("error", reject);
    void (async () => {
      for (const part of init.parts ?? []) {
        req.write(part);
        if (init.pauseMs) await new Promise((r) => setTimeout(r, init.pauseMs));
      }
      req.end();
    })();
  });
}

describe("a streamed response", () => {
  it("reaches the client chunk by chunk as the function writes it, with the figures in trailers", async () => {
    const got = await send("/fn/stream/sse?n=5&every=300");
    expect(got.status).toBe(200);
    expect(got.headers["content-type"]).toBe("text/event-stream");
    expect(got.headers["transfer-encoding"]).toBe("chunked");
    expect(got.chunks.map((c) => c.text).join("")).toBe([0, 1, 2, 3, 4].map((i) => `data: ${i}\n\n`).join(""));
    // The first event came long before the last: nothing waited for the whole body.
    const first = got.chunks[0]?.at ?? 0;
    const last = got.chunks.at(-1)?.at ?? 0;
    expect(last - first).toBeGreaterThan(900);
    expect(got.complete).toBe(true);
    expect(Number(got.trailers["x-joule-fuel"])).toBeGreaterThan(0);
    expect(Number(got.trailers["x-joule-energy-uj"])).toBeGreaterThan(0);
    expect(Number(got.trailers["x-joule-duration-us"])).toBeGreaterThan(1_000_000);
  });

  it("ends abnormally, without the final chunk, when the function fails after the first byte", async () => {
    const got = await send("/fn/stream/sse?n=5&every=100&fail");
    expect(got.status).toBe(200);
    expect(got.chunks.map((c) => c.text).join("")).toBe("data: 0\n\n");
    expect(got.complete).toBe(false);
    // The host keeps serving the function.
    expect((await send("/fn/stream/count")).status).toBe(200);
  });

  it("is cancelled when the client goes away mid-stream", async () => {
    const metric = async () => {
      const text = await (await t.fetch("/metrics")).text();
      return Number(/^joule_pool_in_flight (\d+)$/m.exec(text)?.[1]);
    };
    await new Promise<void>((resolve) => {
      const req = httpRequest(new URL("/fn/stream/sse?n=0&every=100", t.url), (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
    });
    // The endless stream stops: nothing of it is left running.
    await vi.waitFor(async () => expect(await metric()).toBe(0), { timeout: 5000 });
  });
});

describe("a streamed request body", () => {
  it("is read by the function as it arrives", async () => {
    const parts = ["first part, ", "second part, ", "third part"];
    const got = await send("/fn/stream/count-body", {
      method: "POST",
      headers: { "content-type": "text/plain", "transfer-encoding": "chunked" },
      parts,
      pauseMs: 150,
    });
    expect(got.status).toBe(200);
    const answer = JSON.parse(got.chunks.map((c) => c.text).join(""));
    expect(answer.bytes).toBe(parts.join("").length);
    // It came in pieces, as sent, not as one buffered body.
    expect(answer.chunks).toBeGreaterThanOrEqual(2);
  });

  it("carries a large body byte for byte, and refuses one over the limit", async () => {
    const big = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < big.length; i += 997) big[i] = i % 251;
    let sum = 0;
    for (let i = 0; i < big.length; i += 997) sum = (sum + (big[i] ?? 0)) % 65521;
    const got = await send("/fn/stream/count-body", {
      method: "POST",
      headers: { "content-length": String(big.length) },
      parts: [big],
    });
    expect(JSON.parse(got.chunks.map((c) => c.text).join("")), got.chunks.map((c) => c.text).join("")).toMatchObject({
      bytes: big.length,
      sum,
    });
    const over = await send("/fn/stream/count-body", {
      method: "POST",
      headers: { "transfer-encoding": "chunked" },
      parts: [Buffer.alloc(1024 * 1024), Buffer.alloc(1024 * 1024), Buffer.alloc(1024)],
    });
    expect(over.status).toBe(413);
  });
});
