/**
 * `npm run bench` / `joule bench`: cold starts and warm requests, over HTTP
 * on loopback, side by side in one run, for the hello JS guest and a tiny
 * core-Wasm guest:
 *
 *   joule pooled        Joule with snapshots and instance pools (cold: the first
 *                       request to a freshly deployed version, which has no instance yet)
 *   joule, snapshots off  the same with "snapshot": false: init runs on every cold start
 *   joule per-request   Joule with isolation "per-request": a new instance every time
 *   jco stock           jco's own path: transpiled glue with preview2-shim's WASI,
 *                       a fresh instance per request (compiled modules reused)
 *   process/request     the same handler as plain JS in a new node process per request
 *   worker/request      the same handler in a new worker thread per request
 *   fastify + piscina   the same handler as plain JS in a piscina pool set up as
 *                       Joule's (a worker per core, one task each): the floor of
 *                       Joule's architecture, thread hops and all, with no guest
 *   bare fastify        fastify returning the same body: the floor (its cold
 *                       column: the same request after the same pause as a cold
 *                       start, since waking idle threads costs here too)
 *
 * Rows where every request is fresh have one distribution, shown as both
 * cold and warm. Then: memory per warm instance and what one host holds
 * (BENCH_FUNCTIONS deployed, 100 of them warm), and functions that wait
 * (bench/io.ts: bursts of I/O-bound invocations, fan-out, SSE, timeouts
 * beside innocent requests; BENCH_IO=0 leaves them out). Prints the machine, Node,
 * p50/p99 and throughput; writes bench/results/<date>.json and .svg. It
 * fails only on errors, never on a number.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { transpile } from "@bytecodealliance/jco";
import * as shim from "@bytecodealliance/preview2-shim";
import Fastify from "fastify";
import { Piscina } from "piscina";
import { buildFunction } from "../host/src/build/build-function.ts";
import { loadConfig } from "../host/src/config.ts";
import { startHost } from "../host/src/host.ts";
import { watComponent } from "../test/support/wat-component.ts";
import { ioBench, printIo } from "./io.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
const WARM = Number(process.env.BENCH_WARM ?? 1000);
const FUNCTIONS = Number(process.env.BENCH_FUNCTIONS ?? 1000);
const CONCURRENCY = 8;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 2000);

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function get(url: string): Promise<{ status: number; ms: number; cold?: string }> {
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

/**
 * Makes functions 0..count-1 warm, two requests at a time so that both workers take some: one
 * after another, every request could go to the same idle worker, which keeps at most 64 warm.
 */
async function warmTwoAtATime(count: number, url: (i: number) => string): Promise<void> {
  for (let i = 0; i < count; i += 2) await Promise.all([ok(url(i)), i + 1 < count && ok(url(i + 1))]);
}

/** Warm instances the host holds of the functions whose names start with `prefix` (its own metric). */
async function warmInstances(hostUrl: string, key: string, prefix: string): Promise<number> {
  const text = await (await fetch(`${hostUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
  let count = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`joule_instances{function="${prefix}`)) count += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return count;
}

async function ok(url: string) {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url}: status ${r.status}`);
  return r;
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** Samples made and not kept before the measured ones, in every row alike. */
const COLD_WARMUP = Number(process.env.BENCH_COLD_WARMUP ?? 10);

/** Cold samples wait this long after a deploy, so that every thread has gone idle, as in real use. */
const PAUSE_MS = 50;
const pause = () => new Promise((resolve) => setTimeout(resolve, PAUSE_MS));

/** Requests each after the same pause as a cold start: what any request costs once the machine is idle. */
async function afterPause(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    await pause();
    times.push((await ok(url)).ms);
  }
  return times;
}

async function sequential(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push((await ok(url)).ms);
  return times;
}

async function throughput(url: string): Promise<number> {
  let done = 0;
  const until = performance.now() + THROUGHPUT_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await ok(url);
        done++;
      }
    }),
  );
  return done / (THROUGHPUT_MS / 1000);
}

interface Row {
  row: string;
  workload: "hello" | "tiny";
  coldP50: number;
  coldP99: number;
  warmP50: number;
  warmP99: number;
  rps: number;
}

async function summary(
  row: string,
  workload: Row["workload"],
  url: string,
  cold: number[],
  warm: number[],
): Promise<Row> {
  const [coldP50, coldP99, warmP50, warmP99] = [pct(cold, 50), pct(cold, 99), pct(warm, 50), pct(warm, 99)];
  return { row, workload, coldP50, coldP99, warmP50, warmP99, rps: await throughput(url) };
}

/** A row where every request gets a fresh sandbox: one distribution serves as cold and warm. */
async function freshRow(row: string, workload: Row["workload"], url: string): Promise<Row> {
  await sequential(url, COLD_WARMUP);
  const times = await sequential(url, SAMPLES);
  return summary(row, workload, url, times, times);
}

async function warmRow(row: string, workload: Row["workload"], url: string, cold: number[]): Promise<Row> {
  await sequential(url, 100);
  return summary(row, workload, url, cold, await sequential(url, WARM));
}

interface Glue {
  instantiate(
    get: (name: string) => WebAssembly.Module,
    imports: Record<string, unknown>,
  ): Record<
    string,
    { handle(r: unknown, i: unknown): { status: number; headers: Array<[string, string]>; body: Uint8Array } }
  >;
}

/** jco's stock path: its own glue and preview2-shim's Node WASI, a fresh instance per request. */
async function jcoStock(component: Uint8Array, work: string, name: string) {
  const { files } = (await transpile(component, {
    name,
    instantiation: { tag: "async" },
    noTypescript: true,
  } as never)) as unknown as { files: Record<string, Uint8Array> };
  const modules: Record<string, WebAssembly.Module> = {};
  for (const [file, bytes] of Object.entries(files)) {
    if (file.endsWith(".wasm")) modules[file] = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    else if (file === `${name}.js`) await writeFile(join(work, `${name}.mjs`), bytes);
  }
  const glue = (await import(pathToFileURL(join(work, `${name}.mjs`)).href)) as Glue;
  const imports: Record<string, unknown> = {
    "joule:function/host": {
      log: () => {},
      environment: () => [["GREETING", "Hello"]],
      outboundRefusal: () => undefined,
    },
    // hello answers whole and reads no body: the streaming calls are never made.
    "joule:function/body": {
      read: () => undefined,
      respond: () => {},
      write: () => {},
    },
  };
  for (const [pkg, members] of Object.entries(shim as unknown as Record<string, Record<string, unknown>>)) {
    for (const [member, value] of Object.entries(members))
      imports[`wasi:${pkg}/${member.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`] = value;
  }
  return async (url: string) => {
    const root = await glue.instantiate((file) => modules[file] as WebAssembly.Module, imports);
    // hello is built against joule:function 0.2.0, tiny (hand-written) against 0.1.0.
    const current = root["joule:function/handler@0.2.0"];
    const handler = current ?? root["joule:function/handler@0.1.0"];
    if (!handler) throw new Error("no handler");
    const body = new Uint8Array();
    return handler.handle(
      current
        ? { method: "GET", url, mount: "", headers: [], body, bodyStreamed: false }
        : { method: "GET", url, headers: [], body },
      { requestId: "b", functionName: name },
    );
  };
}

function perProcess(which: string, url: string): Promise<{ type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bench/stock/process.mjs"), which, url], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.on("error", reject);
    child.on("close", () => resolve(JSON.parse(out)));
  });
}

function perWorker(which: string, url: string): Promise<{ type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(join(ROOT, "bench/stock/worker.mjs"), { workerData: { which, url } });
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

function svg(rows: Row[]): string {
  const width = 900;
  const barH = 12;
  const lineH = 34;
  const left = 230;
  const max = Math.log10(Math.max(...rows.flatMap((r) => [r.coldP50, r.warmP50])) * 2);
  const min = Math.log10(0.05);
  const x = (ms: number) => left + ((Math.log10(Math.max(ms, 0.05)) - min) / (max - min)) * (width - left - 90);
  const parts = rows.map((r, i) => {
    const y = 40 + i * lineH;
    return [
      `<text x="8" y="${y + 14}" font-size="12">${r.workload} · ${r.row}</text>`,
      `<rect x="${left}" y="${y}" width="${x(r.coldP50) - left}" height="${barH}" fill="#d9534f"/>`,
      `<text x="${x(r.coldP50) + 4}" y="${y + 10}" font-size="10">cold ${r.coldP50.toFixed(2)} ms</text>`,
      `<rect x="${left}" y="${y + barH + 2}" width="${x(r.warmP50) - left}" height="${barH}" fill="#5bc0de"/>`,
      `<text x="${x(r.warmP50) + 4}" y="${y + barH + 12}" font-size="10">warm ${r.warmP50.toFixed(2)} ms</text>`,
    ].join("");
  });
  const height = 60 + rows.length * lineH;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" role="img"><title>Joule bench: cold and warm p50 latency per row</title><text x="8" y="20" font-size="14">Cold and warm p50 latency over HTTP, log scale (ms)</text>${parts.join("")}</svg>\n`;
}

async function main() {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}`;
  console.log(`machine: ${machine}`);
  const work = await mkdtemp(join(tmpdir(), "joule-bench-"));
  const hello = await buildFunction(join(ROOT, "guests/hello"));
  const helloBytes = await readFile(hello.componentPath);
  const tinyBytes = await watComponent(join(ROOT, "test/fixtures/wat/tiny.wat"));
  const tinyPath = join(work, "tiny.wasm");
  await writeFile(tinyPath, tinyBytes);

  const hostConfig = loadConfig({ port: 0, dataDir: join(work, "store"), logLevel: "silent" });
  const host = await startHost(hostConfig);
  const deploy = async (name: string, path: string, extra: Record<string, unknown> = {}) => {
    const started = performance.now();
    // Uploaded, as `joule deploy` does.
    const form = new FormData();
    form.set("config", JSON.stringify({ env: { GREETING: "Hello" }, public: true, ...extra }));
    form.set("component", new Blob([new Uint8Array(await readFile(path))]), "component.wasm");
    const response = await fetch(`${host.url}/v1/functions/${name}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${host.bootstrapKey}` },
      body: form,
    });
    if (!response.ok) throw new Error(`deploy ${name}: ${await response.text()}`);
    return performance.now() - started;
  };

  const stock = { hello: await jcoStock(helloBytes, work, "hello"), tiny: await jcoStock(tinyBytes, work, "tiny") };
  const helloBody = JSON.stringify({ greeting: "Hello, world!", path: "/" });
  const baseline = Fastify();
  baseline.get("/bare/hello", async (_q, reply) => reply.type("application/json").send(helloBody));
  baseline.get("/bare/tiny", async () => "tiny");
  for (const which of ["hello", "tiny"] as const) {
    baseline.get(`/jco/${which}`, async (q, reply) => {
      const r = await stock[which](`http://bench${q.url.slice(`/jco/${which}`.length) || "/"}`);
      return reply.code(r.status).send(Buffer.from(r.body));
    });
    baseline.get(`/process/${which}`, async (q, reply) => {
      const r = await perProcess(which, `http://bench${q.url}`);
      return reply.type(r.type).send(r.body);
    });
    baseline.get(`/worker/${which}`, async (q, reply) => {
      const r = await perWorker(which, `http://bench${q.url}`);
      return reply.type(r.type).send(r.body);
    });
  }
  // As host/src/pool/scheduler.ts sets up its pool.
  const floor = new Piscina({
    filename: new URL("./stock/piscina-task.mjs", import.meta.url).href,
    minThreads: hostConfig.workers,
    maxThreads: hostConfig.workers,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    atomics: "async",
  });
  baseline.get("/piscina/:which", async (q, reply) => {
    const which = (q.params as { which: "hello" | "tiny" }).which;
    const r = (await floor.run({ which, url: `http://bench${q.url}` })) as { type: string; body: string };
    return reply.type(r.type).send(r.body);
  });
  const base = await baseline.listen({ host: "127.0.0.1", port: 0 });

  const rows: Row[] = [];
  /** hello's cold starts that each follow a cold start of another function. */
  let afterOther: { p50: number; p99: number } | undefined;
  const deployMs: Record<string, number> = {};
  for (const [workload, path] of [
    ["hello", hello.componentPath],
    ["tiny", tinyPath],
  ] as const) {
    deployMs[workload] = await deploy(workload, path);
    /**
     * First requests to freshly deployed versions: no instance of them exists anywhere. With
     * `other` ([name, component]), every second sample is a cold start of that function instead.
     */
    const coldStarts = async (name: string, extra: Record<string, unknown> = {}, other?: [string, string]) => {
      const cold: number[] = [];
      // The first ones are not kept: they would also measure the host's own warm-up (V8 still
      // compiling the engine's hot functions in the background, on the same two cores).
      for (let i = 0; i < COLD_WARMUP + SAMPLES; i++) {
        const [fn, component] = other && i % 2 === 1 ? other : [name, path];
        await deploy(fn, component, { env: { GREETING: "Hello", SAMPLE: String(i) }, ...extra });
        await pause(); // a deploy is not followed by a request at once
        const r = await ok(`${host.url}/fn/${fn}/`);
        if (r.cold !== "true") throw new Error(`expected a cold start, got ${r.cold}`);
        if (i >= COLD_WARMUP) cold.push(r.ms);
      }
      return cold;
    };
    rows.push(await warmRow("joule pooled", workload, `${host.url}/fn/${workload}/`, await coldStarts(workload)));
    if (workload === "hello") {
      // The pooled row redeploys one function, whose images share nearly all pages with the
      // previous version's; these cold starts each follow one of another function.
      const twin = await buildFunction(join(ROOT, "bench/guests/hello-twin"));
      const cold = await coldStarts("hello-a", {}, ["hello-b", twin.componentPath]);
      afterOther = { p50: pct(cold, 50), p99: pct(cold, 99) };
    }
    const nosnap = `${workload}-nosnap`;
    const coldNoSnap = await coldStarts(nosnap, { snapshot: false });
    rows.push(await warmRow("joule, snapshots off", workload, `${host.url}/fn/${nosnap}/`, coldNoSnap));
    await deploy(`${workload}-fresh`, path, { isolation: "per-request" });
    rows.push(await freshRow("joule per-request", workload, `${host.url}/fn/${workload}-fresh/`));
    rows.push(await freshRow("jco stock (fresh instance)", workload, `${base}/jco/${workload}`));
    rows.push(await freshRow("process per request", workload, `${base}/process/${workload}`));
    rows.push(await freshRow("worker per request", workload, `${base}/worker/${workload}`));
    // Cold columns of the floors: the same request after the same pause as a cold start.
    await afterPause(`${base}/piscina/${workload}`, COLD_WARMUP);
    const pooled = await afterPause(`${base}/piscina/${workload}`, SAMPLES);
    rows.push(await warmRow("fastify + piscina (no guest)", workload, `${base}/piscina/${workload}`, pooled));
    await afterPause(`${base}/bare/${workload}`, COLD_WARMUP);
    const bare = await afterPause(`${base}/bare/${workload}`, SAMPLES);
    rows.push(await warmRow("bare fastify", workload, `${base}/bare/${workload}`, bare));
  }

  const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
  const table = [["workload", "row", "cold p50", "cold p99", "warm p50", "warm p99", `rps @${CONCURRENCY}`]];
  for (const r of rows)
    table.push([r.workload, r.row, fmt(r.coldP50), fmt(r.coldP99), fmt(r.warmP50), fmt(r.warmP99), r.rps.toFixed(0)]);
  const widths = (table[0] as string[]).map((_, i) => Math.max(...table.map((t) => (t[i] ?? "").length)));
  for (const line of table) console.log(line.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  "));
  console.log(
    `deploy: hello ${deployMs.hello?.toFixed(0)} ms, tiny ${deployMs.tiny?.toFixed(0)} ms (first deploy: transpile, meter, compile)`,
  );
  for (const workload of ["hello", "tiny"] as const) {
    const joule = rows.find((r) => r.workload === workload && r.row === "joule pooled") as Row;
    const bare = rows.find((r) => r.workload === workload && r.row === "bare fastify") as Row;
    const floor = rows.find((r) => r.workload === workload && r.row.startsWith("fastify + piscina")) as Row;
    console.log(
      `${workload}: warm overhead over bare fastify ${((joule.warmP50 - bare.warmP50) * 1000).toFixed(0)} µs p50; cold overhead over bare fastify after the same pause ${(joule.coldP50 - bare.coldP50).toFixed(2)} ms p50; throughput ${((joule.rps / bare.rps) * 100).toFixed(0)}% of bare fastify's`,
    );
    console.log(
      `${workload}: of that, fastify + piscina with no guest takes ${((floor.warmP50 - bare.warmP50) * 1000).toFixed(0)} µs warm and ${(floor.coldP50 - bare.coldP50).toFixed(2)} ms after the pause, and reaches ${((floor.rps / bare.rps) * 100).toFixed(0)}% of bare fastify's throughput; Joule over it: ${((joule.warmP50 - floor.warmP50) * 1000).toFixed(0)} µs warm, ${(joule.coldP50 - floor.coldP50).toFixed(2)} ms cold, ${((joule.rps / floor.rps) * 100).toFixed(0)}% of its throughput`,
    );
  }

  if (afterOther) {
    console.log(
      `hello: cold start after another function's (alternating hello and bench/guests/hello-twin) ${fmt(afterOther.p50)} p50, ${fmt(afterOther.p99)} p99`,
    );
  }

  // Memory per warm tiny instance: RSS before and after warming as many, then they are removed
  // so that they hold no warm slots while the JS functions are measured.
  const tinyCount = 100;
  for (let i = 0; i < tinyCount; i++) await deploy(`tiny-many-${i}`, tinyPath);
  const tinyDeployedRss = process.memoryUsage().rss;
  await warmTwoAtATime(tinyCount, (i) => `${host.url}/fn/tiny-many-${i}/`);
  // Divided by the instances actually kept: a worker keeps at most 64.
  const tinyWarm = await warmInstances(host.url, host.bootstrapKey ?? "", "tiny-many-");
  const perWarmTinyInstanceKb = (process.memoryUsage().rss - tinyDeployedRss) / tinyWarm / 1024;
  for (let i = 0; i < tinyCount; i++) {
    const removed = await fetch(`${host.url}/v1/functions/tiny-many-${i}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${host.bootstrapKey}` },
    });
    if (!removed.ok) throw new Error(`remove tiny-many-${i}: ${await removed.text()}`);
  }
  console.log(`memory: ${perWarmTinyInstanceKb.toFixed(0)} KB per warm tiny instance (${tinyWarm} kept warm)`);

  // Capacity: many deployed functions sharing the engine, some of them warm.
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  for (let i = 0; i < FUNCTIONS; i++)
    await deploy(`many-${i}`, hello.componentPath, { env: { GREETING: "Hello", N: String(i) } });
  const deployedRss = process.memoryUsage().rss;
  const warmCount = Math.min(100, FUNCTIONS);
  await warmTwoAtATime(warmCount, (i) => `${host.url}/fn/many-${i}/`);
  const warmRss = process.memoryUsage().rss;
  const keptWarm = await warmInstances(host.url, host.bootstrapKey ?? "", "many-");
  const capacity = {
    deployed: FUNCTIONS,
    warm: warmCount,
    deploySecondsTotal: (performance.now() - started) / 1000,
    rssBeforeMb: rssBefore / 2 ** 20,
    rssDeployedMb: deployedRss / 2 ** 20,
    rssWarmMb: warmRss / 2 ** 20,
    keptWarm,
    perWarmInstanceMb: (warmRss - deployedRss) / keptWarm / 2 ** 20,
    perWarmTinyInstanceKb,
  };
  console.log(
    `capacity: ${FUNCTIONS} JS functions deployed in ${capacity.deploySecondsTotal.toFixed(1)} s (RSS ${capacity.rssBeforeMb.toFixed(0)} → ${capacity.rssDeployedMb.toFixed(0)} MB); ${warmCount} requested warm, ${keptWarm} kept (a worker keeps at most 64): RSS ${capacity.rssWarmMb.toFixed(0)} MB, ${capacity.perWarmInstanceMb.toFixed(1)} MB per warm JS instance`,
  );

  await baseline.close();
  await floor.destroy();
  await host.close();
  agent.destroy();
  await rm(work, { recursive: true, force: true });

  // Functions that wait (bench/io.ts), on a host of their own, after the rows above.
  const io = process.env.BENCH_IO === "0" ? undefined : await ioBench();
  if (io) printIo(io);

  const date = new Date().toISOString().replace(/[:.]/g, "-");
  await mkdir(join(ROOT, "bench/results"), { recursive: true });
  await writeFile(
    join(ROOT, `bench/results/${date}.json`),
    `${JSON.stringify({ machine, samples: SAMPLES, rows, deployMs, coldAfterOtherFunction: afterOther, capacity, io }, null, 2)}\n`,
  );
  await writeFile(join(ROOT, `bench/results/${date}.svg`), svg(rows));
  console.log(`wrote bench/results/${date}.json and .svg`);
}

await main();
