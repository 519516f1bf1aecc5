/** `joule serve`: run a host here, with the example functions built and deployed into its store. */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { HOST_ID } from "../../auth/keys.ts";
import { buildFunction } from "../../build/build-function.ts";
import { ConfigError, configFromEnv, loadConfig } from "../../config.ts";
import { budgetInput } from "../../energy/ledger.ts";
import { type Host, startHost } from "../../host.ts";
import { functionSettings } from "../../manifest.ts";
import { parse, usageError } from "../args.ts";
import { megabytes, type Output, seconds } from "../output.ts";
import { PROJECT_ROOT } from "../project.ts";

/** Builds each example under `dir` and deploys it into the embedded store unless that exact version is there. */
async function deployExamples(dir: string, host: Pick<Host, "registry" | "ledger">, out: Output): Promise<string[]> {
  const { registry, ledger } = host;
  const names: string[] = [];
  const entries = await readdir(dir).catch(() => []);
  for (const entry of entries.sort()) {
    const functionDir = join(dir, entry);
    if (!(await stat(join(functionDir, "joule.json")).catch(() => undefined))) continue;
    out.step(`building example ${entry}`);
    const built = await buildFunction(functionDir);
    if (built.built) out.info(`✓ built ${built.name} in ${seconds(built.durationMs)} (${megabytes(built.bytes)})`);
    const started = performance.now();
    const { record, changed } = await registry.deploy({
      name: built.name,
      component: await readFile(built.componentPath),
      owner: HOST_ID,
      ...functionSettings(built.manifest),
    });
    if (built.manifest.energyBudget) ledger.setBudget("function", built.name, budgetInput(built.manifest.energyBudget));
    if (changed) out.info(`✓ deployed ${record.name} ${record.version} in ${seconds(performance.now() - started)}`);
    names.push(built.name);
  }
  return names;
}

export async function serve(args: string[], out: Output): Promise<void> {
  const { values } = parse(args, {
    port: { type: "string" },
    "data-dir": { type: "string" },
    examples: { type: "string" },
    "no-examples": { type: "boolean", default: false },
  });
  let config: ReturnType<typeof loadConfig>;
  try {
    const input = configFromEnv();
    if (values.port !== undefined) input.port = values.port as string;
    if (values["data-dir"] !== undefined) input.dataDir = values["data-dir"] as string;
    config = loadConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) throw usageError(error.message);
    throw error;
  }
  const examples = values["no-examples"]
    ? undefined
    : resolve((values.examples as string | undefined) ?? join(PROJECT_ROOT, "guests"));
  let deployed: string[] = [];
  const host = await startHost(config, async (parts) => {
    if (examples) deployed = await deployExamples(examples, parts, out);
  });
  const base = host.url.replace("[::1]", "localhost");
  if (host.bootstrapKey) {
    out.info(
      `\nA first API key, with every scope (shown once, never again; keep it):\n\n  export JOULE_API_KEY=${host.bootstrapKey}\n`,
    );
  }
  out.info(`\nJoule is serving on ${base}  (data dir ${config.dataDir}, ${config.workers} workers)`);
  for (const name of deployed) out.info(`  ${base}/fn/${name}/`);
  const example = deployed.includes("hello") ? "hello" : deployed[0];
  if (example) out.info(`\nTry: curl -i '${base}/fn/${example}/?name=you'`);
  out.info(`Admin API: ${base}/v1/functions   Metrics: ${base}/metrics\n`);

  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    await host.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
