/**
 * `joule dev [dir]`: the edit-save-reload loop. Starts a host here on a
 * temporary data dir (or `--data-dir`), builds and deploys the function,
 * prints its URL, then watches its sources and joule.json: each save
 * rebuilds and swaps the new version in, and a build or deploy that fails
 * prints its error in place while the last good version keeps answering.
 * The function's own log lines print as they come. Each reload says where
 * its time went (bundle, componentize, deploy).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HOST_ID } from "../../auth/keys.ts";
import { buildFunction } from "../../build/build-function.ts";
import { collectFiles } from "../../capabilities/files-bundle.ts";
import { configFromEnv, loadConfig } from "../../config.ts";
import { JouleError } from "../../errors.ts";
import { startHost } from "../../host.ts";
import { functionSettings } from "../../manifest.ts";
import { parse } from "../args.ts";
import { devLog } from "../dev/dev-log.ts";
import { watchSources } from "../dev/watch.ts";
import { type Output, seconds } from "../output.ts";

export async function dev(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    port: { type: "string", default: "8787" },
    "data-dir": { type: "string" },
  });
  const dir = resolve(positionals[0] ?? ".");
  const given = values["data-dir"] as string | undefined;
  const dataDir = given ?? (await mkdtemp(join(tmpdir(), "joule-dev-")));
  const config = loadConfig({
    ...configFromEnv(),
    host: "127.0.0.1",
    port: values.port as string,
    dataDir,
    logLevel: "info",
  });
  const host = await startHost(
    config,
    undefined,
    devLog((line) => out.info(line)),
  );
  const say = (line: string) => out.info(`${new Date().toISOString().slice(11, 19)} ${line}`);

  /** Builds and deploys once; false (having said why) when the build or the deploy failed. */
  const reload = async (why: string): Promise<boolean> => {
    const started = performance.now();
    try {
      const built = await buildFunction(dir);
      for (const warning of built.warnings) out.warn(warning);
      const deployStarted = performance.now();
      const { record, changed } = await host.registry.deploy({
        name: built.name,
        component: await readFile(built.componentPath),
        files: await collectFiles(dir, built.manifest.capabilities.files),
        owner: HOST_ID,
        ...functionSettings(built.manifest),
      });
      const deployMs = performance.now() - deployStarted;
      const url = `${host.url}/fn/${record.name}/`;
      const timing = built.built
        ? `build ${seconds(built.durationMs)} (bundle ${seconds(built.timings.bundleMs)}, componentize ${seconds(built.timings.componentizeMs)}), deploy ${seconds(deployMs)}`
        : `build up to date, deploy ${seconds(deployMs)}`;
      say(
        `✓ ${why}: ${record.name} ${record.version}${changed ? "" : " (unchanged)"} in ${seconds(performance.now() - started)}: ${timing} → ${url}`,
      );
      return true;
    } catch (error) {
      const wire =
        error instanceof JouleError ? error.toWire() : { code: "JOULE_ERR_HOST_INTERNAL", message: String(error) };
      say(`✗ ${why} failed: error ${wire.code}: ${wire.message}`);
      say("  (the last good version keeps answering; save again to retry)");
      return false;
    }
  };

  out.info(`joule dev: ${dir}, host on ${host.url} (data dir ${dataDir})`);
  if (host.bootstrapKey)
    out.info(`  key for private functions and the admin API: export JOULE_API_KEY=${host.bootstrapKey}`);
  await reload("deployed");
  let running: Promise<unknown> = Promise.resolve();
  let queued = false;
  const watcher = watchSources(dir, (files) => {
    // One rebuild at a time; saves during one make exactly one more.
    if (queued) return;
    queued = true;
    running = running.then(async () => {
      queued = false;
      await reload(`reload (${files.slice(0, 3).join(", ")}${files.length > 3 ? ", …" : ""})`);
    });
  });
  out.info("watching for changes; Ctrl-C stops");

  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    watcher.close();
    await running.catch(() => undefined);
    await host.close();
    if (!given) {
      await rm(dataDir, { recursive: true, force: true });
      await rm(`${dataDir}.secrets-key`, { force: true });
    }
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
