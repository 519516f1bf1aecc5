/**
 * `npm run bench:oci`: what moving a JS function through a registry costs.
 * Starts a real distribution registry on loopback, then for the hello
 * guest's artifact: pushes it to a fresh repository (every blob uploaded)
 * and pulls it back (every blob fetched and verified), RUNS times each, and
 * prints medians and maxima; the artifact's sizes; and how much a host's
 * data dir grows per deployed JS function (three guests built from the SDK).
 * A benchmark: it fails only on errors.
 */
import { execSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { buildFunction } from "../host/src/build/build-function.ts";
import { loadConfig } from "../host/src/config.ts";
import { startHost } from "../host/src/host.ts";
import { packageFunction } from "../host/src/oci/artifact.ts";
import { parseReference } from "../host/src/oci/reference.ts";
import { pull, push } from "../host/src/oci/transfer.ts";
import { startRegistry } from "../test/support/registry-process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const GUESTS = ["hello", "json-api", "echo"];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

console.log(`machine: ${cpus()[0]?.model} × ${cpus().length}, Node ${process.version}, ${RUNS} runs`);
for (const guest of GUESTS) await buildFunction(join(ROOT, "guests", guest));
const component = await readFile(join(ROOT, "guests/hello/dist/component.wasm"));
const artifact = await packageFunction(
  component,
  JSON.parse(await readFile(join(ROOT, "guests/hello/joule.json"), "utf8")),
);
console.log(
  `artifact: layer ${mb(artifact.layer.bytes.byteLength)}, config ${artifact.config.bytes.byteLength} B, manifest ${artifact.manifest.bytes.byteLength} B`,
);

const registry = await startRegistry();
try {
  const pushes: number[] = [];
  const pulls: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const ref = parseReference(`${registry.address}/bench/hello-${i}:1`);
    let started = performance.now();
    await push(artifact, ref);
    pushes.push(performance.now() - started);
    started = performance.now();
    await pull(ref, { maxLayerBytes: 256 * 1024 * 1024 });
    pulls.push(performance.now() - started);
  }
  console.log(
    `push (all blobs uploaded): median ${median(pushes).toFixed(0)} ms, max ${Math.max(...pushes).toFixed(0)} ms`,
  );
  console.log(
    `pull (all blobs fetched, verified): median ${median(pulls).toFixed(0)} ms, max ${Math.max(...pulls).toFixed(0)} ms`,
  );
} finally {
  await registry.stop();
}

const dataDir = await mkdtemp(join(tmpdir(), "joule-bench-store-"));
const host = await startHost(loadConfig({ port: 0, dataDir, workers: 1, logLevel: "silent" }));
try {
  const size = () =>
    Number(execSync(`du -sb --exclude=tmp --exclude='*.db*' --exclude=host.lock ${dataDir}`).toString().split("\t")[0]);
  let before = size();
  for (const guest of GUESTS) {
    const manifest = JSON.parse(await readFile(join(ROOT, "guests", guest, "joule.json"), "utf8"));
    await host.registry.deploy({
      name: guest,
      component: await readFile(join(ROOT, "guests", guest, "dist/component.wasm")),
      env: manifest.env ?? {},
      limits: {},
      scaling: { minInstances: 0, maxQueue: 100, idleTimeoutMs: 300_000 },
      isolation: "reuse",
      snapshot: true,
      public: true,
      capabilities: { kv: [], outboundHttp: [], files: {} },
    });
    const after = size();
    console.log(`store growth deploying ${guest}: ${mb(after - before)}`);
    before = after;
  }
} finally {
  await host.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(`${dataDir}.secrets-key`, { force: true }); // made beside the data dir at its first start
}
