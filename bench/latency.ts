/**
 * `npm run bench`: deploy and invocation latency over HTTP on loopback.
 *
 * For the hello JS guest and a tiny core-Wasm guest it measures, in one run:
 * - deploy: upload → transpile → compile → stored (fresh data dir);
 * - cold: the first request to a function version with no live instance
 *   (each sample redeploys with a new env, so the version is new; the
 *   compiled modules stay cached, as after any redeploy);
 * - warm: sequential requests to a warm instance, and throughput at a fixed
 *   concurrency;
 * against bare fastify returning the same body from the same process (the
 * floor). Prints the machine, Node, medians and p99s; writes nothing else.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { buildFunction } from "../host/src/build/build-function.ts";
import { loadConfig } from "../host/src/config.ts";
import { startHost } from "../host/src/host.ts";
import { watComponent } from "../test/support/wat-component.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const COLD_SAMPLES = Number(process.env.BENCH_COLD ?? 30);
const WARM_SAMPLES = Number(process.env.BENCH_WARM ?? 2000);
const CONCURRENCY = 8;
const THROUGHPUT_MS = 3000;

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function get(url: string): Promise<{ status: number; ms: number; cold: string | undefined }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    request(url, { agent }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          ms: performance.now() - started,
          cold: res.headers["x-joule-cold-start"] as string,
        }),
      );
    })
      .on("error", reject)
      .end();
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);

async function warm(url: string): Promise<{ p50: number; p99: number; rps: number }> {
  for (let i = 0; i < 200; i++) await get(url);
  const times: number[] = [];
  for (let i = 0; i < WARM_SAMPLES; i++) times.push((await get(url)).ms);
  let done = 0;
  const until = performance.now() + THROUGHPUT_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        const r = await get(url);
        if (r.status !== 200) throw new Error(`status ${r.status} from ${url}`);
        done++;
      }
    }),
  );
  return { p50: percentile(times, 50), p99: percentile(times, 99), rps: done / (THROUGHPUT_MS / 1000) };
}

async function deployJson(base: string, name: string, path: string, env: Record<string, string>) {
  const started = performance.now();
  const response = await fetch(`${base}/v1/functions/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ component: { path }, env }),
  });
  if (!response.ok) throw new Error(`deploy ${name}: ${response.status} ${await response.text()}`);
  return performance.now() - started;
}

async function main() {
  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`,
  );
  const hello = await buildFunction(join(ROOT, "guests/hello"));
  const dataDir = await mkdtemp(join(tmpdir(), "joule-bench-"));
  const tinyPath = join(dataDir, "tiny.wasm");
  await writeFile(tinyPath, await watComponent(join(ROOT, "test/fixtures/wat/tiny.wat")));

  const host = await startHost(loadConfig({ port: 0, dataDir: join(dataDir, "store"), logLevel: "silent" }));
  const bare = Fastify();
  const helloBody = JSON.stringify({ greeting: "Hello, world!", path: "/" });
  bare.get("/hello", async (_req, reply) => reply.type("application/json").send(helloBody));
  bare.get("/tiny", async () => "tiny");
  const bareUrl = await bare.listen({ host: "127.0.0.1", port: 0 });

  const rows: string[][] = [];
  for (const [name, path] of [
    ["hello", hello.componentPath],
    ["tiny", tinyPath],
  ] as const) {
    const deployMs = await deployJson(host.url, name, path, { GREETING: "Hello" });
    const cold: number[] = [];
    for (let i = 0; i < COLD_SAMPLES; i++) {
      await deployJson(host.url, name, path, { GREETING: "Hello", SAMPLE: String(i) });
      const r = await get(`${host.url}/fn/${name}/`);
      if (r.cold !== "true") throw new Error(`${name}: expected a cold start, got ${r.cold}`);
      cold.push(r.ms);
    }
    const w = await warm(`${host.url}/fn/${name}/`);
    rows.push([
      `joule ${name}`,
      fmt(deployMs),
      fmt(percentile(cold, 50)),
      fmt(percentile(cold, 99)),
      fmt(w.p50),
      fmt(w.p99),
      w.rps.toFixed(0),
    ]);
    const b = await warm(`${bareUrl}/${name}`);
    rows.push([`bare fastify (${name} body)`, "—", "—", "—", fmt(b.p50), fmt(b.p99), b.rps.toFixed(0)]);
  }
  const header = ["row", "deploy", "cold p50", "cold p99", "warm p50", "warm p99", `rps @${CONCURRENCY}`];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  "));
  console.log(
    `(cold: ${COLD_SAMPLES} samples, each a new version; warm: ${WARM_SAMPLES} sequential requests, then ${THROUGHPUT_MS / 1000}s at ${CONCURRENCY} concurrent)`,
  );

  await bare.close();
  await host.close();
  agent.destroy();
  await rm(dataDir, { recursive: true, force: true });
}

await main();
