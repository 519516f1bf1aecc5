/**
 * `npm run bench:io` (and the end of `npm run bench`): functions that wait.
 *
 *   burst N       N invocations at once of a JS function that awaits a 2 s
 *                 loopback upstream (N = 256 and 1,000, on the host's
 *                 workers): wall time, the most the upstream saw at once,
 *                 the host's memory per invocation in flight, and a `hello`
 *                 request's p50/p99 meanwhile against its p50/p99 idle; the
 *                 same burst on plain fastify with an `await fetch` is the
 *                 baseline
 *   fan-out       one invocation making 10 requests at once to a 200 ms upstream
 *   sse           time to the first byte of a 5-event stream against its total
 *   timeouts      hello requests that fail while invocations of another
 *                 function time out on the same workers (the goal is none)
 *
 * Prints the machine, Node, medians and p99s; writes bench/results/io-<date>.json.
 * Traffic stays on loopback.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { buildFunction } from "../host/src/build/build-function.ts";
import { loadConfig } from "../host/src/config.ts";
import { startHost } from "../host/src/host.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const UPSTREAM_MS = Number(process.env.BENCH_IO_UPSTREAM_MS ?? 2000);
const BURSTS = (process.env.BENCH_IO_BURSTS ?? "256,1000").split(",").map(Number);

const many = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const few = new Agent({ keepAlive: true, maxSockets: 8 });

interface Answer {
  status: number;
  ms: number;
  firstByteMs: number;
}

function get(url: string, agent = few): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    request(url, { agent }, (res) => {
      let firstByteMs = -1;
      res.on("data", () => {
        if (firstByteMs < 0) firstByteMs = performance.now() - started;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, firstByteMs }));
    })
      .on("error", reject)
      .end();
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 0)} ms`;

/** A loopback upstream that answers `/wait?ms=` after that long, counting how many wait at once. */
async function upstream() {
  const waiting = { now: 0, most: 0, arrivals: [] as number[] };
  const server = createServer((req, res) => {
    const wait = Number(new URL(req.url ?? "/", "http://u").searchParams.get("ms") ?? UPSTREAM_MS);
    waiting.now++;
    waiting.arrivals.push(performance.now());
    waiting.most = Math.max(waiting.most, waiting.now);
    setTimeout(() => {
      waiting.now--;
      res.end("done");
    }, wait);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, waiting, close: () => new Promise((r) => server.close(r)) };
}

async function deploy(hostUrl: string, key: string, name: string, dir: string, extra: Record<string, unknown> = {}) {
  const built = await buildFunction(dir);
  const manifest = JSON.parse(await readFile(join(dir, "joule.json"), "utf8")) as Record<string, unknown>;
  const { name: _, ...settings } = manifest;
  const form = new FormData();
  form.set("config", JSON.stringify({ ...settings, ...extra }));
  form.set("component", new Blob([new Uint8Array(await readFile(built.componentPath))]), "component.wasm");
  const response = await fetch(`${hostUrl}/v1/functions/${name}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  if (!response.ok) throw new Error(`deploy ${name}: ${await response.text()}`);
}

interface Burst {
  target: string;
  n: number;
  wallMs: number;
  upstreamMost: number;
  /** When the upstream saw the first and the median of the N requests, from the burst's start. */
  firstArrivalMs: number;
  medianArrivalMs: number;
  ok: number;
  memoryPerInFlightKb: number;
  helloIdle: { p50: number; p99: number };
  helloDuring: { p50: number; p99: number };
}

/** `n` at once to `url`, with hello requests one after another meanwhile. */
async function burst(
  target: string,
  url: string,
  n: number,
  hello: string,
  up: Awaited<ReturnType<typeof upstream>>,
): Promise<Burst> {
  const idle: number[] = [];
  for (let i = 0; i < 40; i++) idle.push((await get(hello)).ms);
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  up.waiting.most = 0;
  up.waiting.arrivals = [];
  let peak = rssBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const started = performance.now();
  let done = false;
  const all = Promise.all(Array.from({ length: n }, () => get(url, many))).finally(() => {
    done = true;
  });
  const during: number[] = [];
  await new Promise((resolve) => setTimeout(resolve, 100));
  while (!done) during.push((await get(hello)).ms);
  const answers = await all;
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  const arrivals = up.waiting.arrivals.map((t) => t - started).sort((a, b) => a - b);
  return {
    target,
    n,
    wallMs,
    upstreamMost: up.waiting.most,
    firstArrivalMs: arrivals[0] ?? Number.NaN,
    medianArrivalMs: percentile(arrivals, 50),
    ok: answers.filter((a) => a.status === 200).length,
    memoryPerInFlightKb: (peak - rssBefore) / 1024 / Math.max(1, Math.min(n, up.waiting.most)),
    helloIdle: { p50: percentile(idle, 50), p99: percentile(idle, 99) },
    helloDuring: { p50: percentile(during, 50), p99: percentile(during, 99) },
  };
}

export async function ioBench(): Promise<Record<string, unknown>> {
  const up = await upstream();
  const work = await mkdtemp(join(tmpdir(), "joule-bench-io-"));
  const host = await startHost(loadConfig({ port: 0, dataDir: join(work, "store"), logLevel: "silent" }));
  const key = host.bootstrapKey ?? "";
  const results: Record<string, unknown> = {};
  try {
    await deploy(host.url, key, "waiter", join(ROOT, "bench/guests/waiter"));
    await deploy(host.url, key, "hello", join(ROOT, "guests/hello"));
    await deploy(host.url, key, "sleeper", join(ROOT, "bench/guests/waiter"), {
      limits: { timeoutMs: 300, outbound: { requests: 100 } },
    });
    const baseline = Fastify();
    baseline.get("/wait", async () => (await fetch(`${up.origin}/wait?ms=${UPSTREAM_MS}`)).text());
    baseline.get("/hello", async () => ({ greeting: "Hello, world!" }));
    const baseUrl = await baseline.listen({ host: "127.0.0.1", port: 0 });

    const hello = `${host.url}/fn/hello/`;
    const wait = `${host.url}/fn/waiter/wait?url=${encodeURIComponent(`${up.origin}/wait?ms=${UPSTREAM_MS}`)}`;
    await get(wait);
    await get(hello);
    const bursts: Burst[] = [];
    for (const n of BURSTS) {
      bursts.push(await burst("joule", wait, n, hello, up));
      bursts.push(await burst("fastify + await fetch", `${baseUrl}/wait`, n, `${baseUrl}/hello`, up));
    }
    results.bursts = bursts;

    const fan: number[] = [];
    const fanUrl = `${host.url}/fn/waiter/fan?n=10&url=${encodeURIComponent(`${up.origin}/wait?ms=200`)}`;
    for (let i = 0; i < 10; i++) fan.push((await get(fanUrl)).ms);
    results.fanOut = { p50: percentile(fan, 50), p99: percentile(fan, 99), upstreamMs: 200, requests: 10 };

    const sse = [];
    for (let i = 0; i < 10; i++) sse.push(await get(`${host.url}/fn/waiter/sse?n=5&every=100`));
    results.sse = {
      firstByteP50: percentile(
        sse.map((a) => a.firstByteMs),
        50,
      ),
      totalP50: percentile(
        sse.map((a) => a.ms),
        50,
      ),
      events: 5,
      everyMs: 100,
    };

    // Timeouts beside innocent requests: sleepers past their 300 ms limit, hello meanwhile.
    const sleepers = Promise.all(Array.from({ length: 20 }, () => get(`${host.url}/fn/sleeper/sleep?ms=5000`, many)));
    const innocent = await Promise.all(Array.from({ length: 200 }, () => get(hello)));
    const timedOut = (await sleepers).filter((a) => a.status === 504).length;
    results.timeouts = {
      sleepers: 20,
      timedOut,
      innocent: innocent.length,
      innocentFailed: innocent.filter((a) => a.status !== 200).length,
    };
    await baseline.close();
  } finally {
    await host.close();
    await up.close();
    await rm(work, { recursive: true, force: true });
  }
  return results;
}

export function printIo(results: Record<string, unknown>): void {
  const bursts = results.bursts as Burst[];
  console.log("\nI/O-bound: N at once, each awaiting a 2 s loopback upstream");
  for (const b of bursts) {
    console.log(
      `  ${b.target.padEnd(22)} N=${String(b.n).padEnd(5)} wall ${ms(b.wallMs).padEnd(9)} upstream saw ${String(b.upstreamMost).padEnd(5)} at once (first at ${ms(b.firstArrivalMs)}, median ${ms(b.medianArrivalMs)}), ${b.ok}/${b.n} ok, ${b.memoryPerInFlightKb.toFixed(0)} KB per in-flight; hello idle ${ms(b.helloIdle.p50)}/${ms(b.helloIdle.p99)}, during ${ms(b.helloDuring.p50)}/${ms(b.helloDuring.p99)} (p50/p99)`,
    );
  }
  const fan = results.fanOut as { p50: number; p99: number };
  console.log(
    `fan-out: 10 requests at once to a 200 ms upstream, one invocation: ${ms(fan.p50)} p50, ${ms(fan.p99)} p99`,
  );
  const sse = results.sse as { firstByteP50: number; totalP50: number };
  console.log(`sse: 5 events 100 ms apart: first byte ${ms(sse.firstByteP50)} p50, whole ${ms(sse.totalP50)} p50`);
  const t = results.timeouts as { sleepers: number; timedOut: number; innocent: number; innocentFailed: number };
  console.log(
    `timeouts: ${t.timedOut}/${t.sleepers} invocations timed out while ${t.innocentFailed}/${t.innocent} hello requests failed`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}; node ${process.version}`);
  const results = await ioBench();
  printIo(results);
  const date = new Date().toISOString().replace(/[:.]/g, "-");
  await writeFile(join(ROOT, `bench/results/io-${date}.json`), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote bench/results/io-${date}.json`);
  process.exit(0);
}
