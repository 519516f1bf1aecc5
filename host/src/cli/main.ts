/**
 * `joule`: build, deploy, serve, invoke, list and delete functions.
 * Run `joule help` for usage.
 */
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { HOST_ID, type KeyInfo, KeyStore, openAuthDb, SCOPES, type Scope, scopeSchema } from "../auth/keys.ts";
import { buildFunction } from "../build/build-function.ts";
import { collectFiles } from "../capabilities/files-bundle.ts";
import { SecretStore } from "../capabilities/secrets.ts";
import { ConfigError, configFromEnv, loadConfig } from "../config.ts";
import { calibrate } from "../energy/calibrate.ts";
import { budgetInput } from "../energy/ledger.ts";
import { JouleError } from "../errors.ts";
import { type Host, startHost } from "../host.ts";
import { type DeploySettings, functionSettings } from "../manifest.ts";
import { type Credentials, credentialLookup, defaultAuthFile } from "../oci/credentials.ts";
import { writeLayout } from "../oci/layout.ts";
import { artifactFrom, packageDirectory } from "../oci/package-dir.ts";
import { formatReference, parseReference } from "../oci/reference.ts";
import { pull as pullArtifact, push as pushArtifact } from "../oci/transfer.ts";
import {
  type ClientOptions,
  createKey,
  deleteFunction,
  deployReference,
  deployUpload,
  listFunctions,
  listKeys,
  revokeKey,
} from "./client.ts";
import { megabytes, Output, seconds } from "./output.ts";

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const DEFAULT_HOST = "http://127.0.0.1:8080";

const USAGE = `joule — WebAssembly functions

  joule build <dir>... [--force]          bundle and componentize functions (dir holds joule.json)
  joule deploy <dir> [--name N] [--narrow JSON]
                                          build if needed, then deploy to a host (with the
                                          files of capabilities.files; --narrow grants less)
  joule deploy oci://<registry>/<repo>:<tag>|@sha256:<d> [--name N]
                                          the host pulls the artifact and deploys it (name: --name or the repo's last segment)
  joule package <dir> [--out D] [--tag T] build if needed, then write an OCI image layout (default <dir>/dist/oci, tag latest)
  joule push <layout[:tag]|dir> <registry>/<repo>:<tag> [--chunk-size BYTES]
                                          push an artifact (a function dir is packaged first)
  joule pull <registry>/<repo>:<tag>|@sha256:<d> [dir]
                                          pull an artifact into an OCI image layout (default ./<repo's last segment>)
  joule invoke <name> [path] [-X M] [-d BODY]   call a deployed function
  joule list                              list deployed functions
  joule delete <name>                     remove a deployed function
  joule serve [--port P] [--data-dir D] [--examples DIR | --no-examples]
                                          run a host; builds and deploys the example functions
  joule calibrate [--data-dir D] [--seconds S] [--watts W] [--powercap DIR]
                                          measure fuel per second (and power per core, where RAPL
                                          counters can be read) for the energy model
  joule bench                             compare cold and warm latency against the alternatives
  joule keys create --scopes S1,S2 [--functions F1,F2] [--name N] | list | revoke <id>
                                          API keys of the host whose data dir this is, or with --host
                                          of that host (the key needs keys:manage)

  joule secrets set <name> --functions F1,F2|'*' [--value V] | list | delete <name>
                                          values env may reference as secret://<name>

Scopes: functions:manage, functions:invoke, energy:manage, artifacts:manage, audit:read, keys:manage

Registry: --insecure (plain HTTP; loopback registries always are), --auth-file F (default $REGISTRY_AUTH_FILE,
  $DOCKER_CONFIG/config.json, ~/.docker/config.json), --username U --password-stdin

Common: --host URL (default $JOULE_HOST or ${DEFAULT_HOST}), --key K (default $JOULE_API_KEY), --json`;

const COMMON = {
  json: { type: "boolean", default: false },
  host: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

function usageError(message: string): JouleError {
  return new JouleError("JOULE_ERR_CLI_USAGE", `${message}\n\n${USAGE}`);
}

function client(values: { host?: string | undefined; key?: string | undefined }): ClientOptions {
  return {
    host: values.host ?? process.env.JOULE_HOST ?? DEFAULT_HOST,
    token: values.key ?? process.env.JOULE_API_KEY ?? process.env.JOULE_ADMIN_TOKEN,
  };
}

function parse<const T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    const merged: typeof COMMON & T = { ...COMMON, ...options };
    return parseArgs({ args, options: merged, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError((error as Error).message);
  }
}

async function build(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, { force: { type: "boolean", default: false } });
  if (positionals.length === 0)
    throw usageError("joule build needs a function directory, e.g. `joule build guests/hello`");
  for (const dir of positionals) {
    out.step(`building ${dir} (bundle, componentize)`);
    const result = await buildFunction(dir, { force: values.force === true });
    const where = relative(process.cwd(), result.componentPath);
    out.done(
      `${result.built ? "built" : "up to date:"} ${result.name} in ${seconds(result.durationMs)} (${megabytes(result.bytes)}) → ${where}`,
      {
        command: "build",
        name: result.name,
        built: result.built,
        durationMs: Math.round(result.durationMs),
        bytes: result.bytes,
        component: where,
      },
    );
  }
}

async function deploy(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, { name: { type: "string" }, narrow: { type: "string" } });
  const dir = positionals[0];
  if (!dir || positionals.length > 1) throw usageError("joule deploy needs one function directory or oci:// reference");
  if (dir.startsWith("oci://")) return deployByReference(dir, values.name as string | undefined, values, out);
  let narrow: DeploySettings["narrow"];
  try {
    narrow = values.narrow === undefined ? undefined : JSON.parse(values.narrow as string);
  } catch {
    throw usageError('--narrow takes JSON, e.g. --narrow \'{"kv":["cache"]}\'');
  }
  out.step(`building ${dir}`);
  const built = await buildFunction(dir);
  const name = (values.name as string | undefined) ?? built.name;
  const target = client(values);
  out.step(`deploying ${name} to ${target.host} (${megabytes(built.bytes)})`);
  const started = performance.now();
  const files = await collectFiles(resolve(dir), built.manifest.capabilities.files);
  const record = await deployUpload(
    target,
    name,
    built.componentPath,
    {
      ...functionSettings(built.manifest),
      energyBudget: built.manifest.energyBudget,
      narrow,
    },
    files,
  );
  const deployMs = performance.now() - started;
  out.done(
    `deployed ${name} ${record.version} in ${seconds(deployMs)} (build ${built.built ? seconds(built.durationMs) : "up to date"}) → ${record.url}`,
    {
      command: "deploy",
      ...record,
      buildMs: Math.round(built.durationMs),
      built: built.built,
      totalDeployMs: Math.round(deployMs),
    },
  );
}

async function deployByReference(
  text: string,
  nameOption: string | undefined,
  values: { host?: string | undefined; key?: string | undefined },
  out: Output,
): Promise<void> {
  const ref = parseReference(text);
  const name = nameOption ?? ref.repository.split("/").pop() ?? ref.repository;
  const target = client(values);
  out.step(`deploying ${name} from ${formatReference(ref)} to ${target.host}`);
  const started = performance.now();
  const record = await deployReference(target, name, `oci://${formatReference(ref)}`);
  const artifact = record.artifact as { digest?: string } | undefined;
  out.done(
    `deployed ${name} ${record.version} (${artifact?.digest?.slice(0, 19)}) in ${seconds(performance.now() - started)} → ${record.url}`,
    { command: "deploy", ...record, totalDeployMs: Math.round(performance.now() - started) },
  );
}

const REGISTRY_OPTIONS = {
  insecure: { type: "boolean", default: false },
  "auth-file": { type: "string" },
  username: { type: "string" },
  "password-stdin": { type: "boolean", default: false },
} as const;

async function registryCredentials(
  values: {
    "auth-file"?: string | boolean | undefined;
    username?: string | boolean | undefined;
    "password-stdin"?: string | boolean | undefined;
  },
  registry: string,
) {
  let explicit: Credentials | undefined;
  if (values.username !== undefined) {
    if (!values["password-stdin"])
      throw usageError("--username needs --password-stdin (the password is read from stdin)");
    explicit = { username: String(values.username), password: (await readStdin()).replace(/\r?\n$/, "") };
  }
  const file = (values["auth-file"] as string | undefined) ?? defaultAuthFile();
  return credentialLookup({ file, registry, explicit });
}

async function packageCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, { out: { type: "string" }, tag: { type: "string" } });
  const dir = positionals[0];
  if (!dir || positionals.length > 1) throw usageError("joule package needs one function directory");
  out.step(`packaging ${dir}`);
  const started = performance.now();
  const packaged = await packageDirectory(dir, {
    out: values.out as string | undefined,
    tag: values.tag as string | undefined,
  });
  const { manifest, layer, files } = packaged.artifact;
  const shipped = files.length === 0 ? "" : `, ${files.length} file${files.length === 1 ? "" : "s"}`;
  out.done(
    `packaged ${relative(process.cwd(), packaged.layout) || "."}:${packaged.tag} ${manifest.descriptor.digest} (${megabytes(layer.bytes.byteLength)}${shipped}) in ${seconds(performance.now() - started)}`,
    {
      command: "package",
      layout: packaged.layout,
      tag: packaged.tag,
      digest: manifest.descriptor.digest,
      layer: layer.descriptor,
      files: files.map((file) => file.descriptor),
      built: packaged.built,
    },
  );
}

async function pushCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, { ...REGISTRY_OPTIONS, "chunk-size": { type: "string" } });
  const [source, target] = positionals;
  if (!source || !target || positionals.length > 2)
    throw usageError("joule push needs a layout or function directory and a reference");
  const ref = parseReference(target);
  const chunkSize = values["chunk-size"] === undefined ? undefined : Number(values["chunk-size"]);
  if (chunkSize !== undefined && !(Number.isInteger(chunkSize) && chunkSize > 0))
    throw usageError("--chunk-size is a number of bytes");
  const credentials = await registryCredentials(values, ref.registry);
  const { artifact, from } = await artifactFrom(source, Number.MAX_SAFE_INTEGER);
  out.step(`pushing ${from} to ${formatReference(ref)}`);
  const started = performance.now();
  const result = await pushArtifact(artifact, ref, { credentials, insecure: values.insecure === true, chunkSize });
  const ms = performance.now() - started;
  out.done(
    `pushed ${formatReference({ ...ref, digest: result.digest })} in ${seconds(ms)} (${result.uploaded} blobs sent, ${result.skipped} already there, ${megabytes(result.bytesSent)})`,
    { command: "push", ref: formatReference(ref), ...result, ms: Math.round(ms) },
  );
}

async function pullCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, { ...REGISTRY_OPTIONS, "max-layer-bytes": { type: "string" } });
  const [text, dirArg] = positionals;
  if (!text || positionals.length > 2) throw usageError("joule pull needs a reference, and optionally a directory");
  const ref = parseReference(text);
  const dir = resolve(dirArg ?? ref.repository.split("/").pop() ?? "artifact");
  const credentials = await registryCredentials(values, ref.registry);
  out.step(`pulling ${formatReference(ref)}`);
  const started = performance.now();
  const result = await pullArtifact(ref, {
    credentials,
    insecure: values.insecure === true,
    maxLayerBytes: values["max-layer-bytes"] === undefined ? 256 * 1024 * 1024 : Number(values["max-layer-bytes"]),
  });
  const tag = ref.tag ?? "latest";
  await writeLayout(dir, result.artifact, tag);
  const ms = performance.now() - started;
  out.done(
    `pulled ${formatReference({ ...ref, digest: result.digest })} in ${seconds(ms)} (${megabytes(result.artifact.layer.bytes.byteLength)}) → ${relative(process.cwd(), dir) || "."}:${tag}`,
    { command: "pull", ref: formatReference(ref), digest: result.digest, layout: dir, tag, ms: Math.round(ms) },
  );
}

async function invoke(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    method: { type: "string", short: "X", default: "GET" },
    data: { type: "string", short: "d" },
  });
  const [name, path = "/"] = positionals;
  if (!name) throw usageError("joule invoke needs a function name");
  const target = client(values);
  const url = new URL(`/fn/${encodeURIComponent(name)}${path.startsWith("/") ? path : `/${path}`}`, target.host);
  const started = performance.now();
  let response: Response;
  try {
    const headers: Record<string, string> = target.token ? { authorization: `Bearer ${target.token}` } : {};
    response = await fetch(url, { method: String(values.method), body: values.data as string | undefined, headers });
  } catch (error) {
    throw new JouleError("JOULE_ERR_CLI_HOST_UNREACHABLE", `cannot reach ${target.host}: ${(error as Error).message}`);
  }
  const body = await response.text();
  const ms = performance.now() - started;
  if (out.json) {
    out.done("", {
      command: "invoke",
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body,
      ms,
    });
    return;
  }
  process.stdout.write(body.endsWith("\n") ? body : `${body}\n`);
  process.stderr.write(
    `${response.status} in ${seconds(ms)} (cold start: ${response.headers.get("x-joule-cold-start")}, ${response.headers.get("x-joule-duration-us")} µs in the worker)\n`,
  );
  if (!response.ok) process.exitCode = 1;
}

async function list(args: string[], out: Output): Promise<void> {
  const { values } = parse(args, {});
  const { functions } = await listFunctions(client(values));
  if (out.json) return out.done("", { command: "list", functions });
  if (functions.length === 0) out.info("no functions deployed");
  for (const f of functions) out.info(`${f.name}\t${f.version}\t${f.url}`);
}

async function remove(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {});
  const name = positionals[0];
  if (!name) throw usageError("joule delete needs a function name");
  await deleteFunction(client(values), name);
  out.done(`deleted ${name}`, { command: "delete", name });
}

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

async function serve(args: string[], out: Output): Promise<void> {
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

async function calibrateCommand(args: string[], out: Output): Promise<void> {
  const { values } = parse(args, {
    "data-dir": { type: "string" },
    seconds: { type: "string", default: "3" },
    watts: { type: "string" },
    powercap: { type: "string" },
  });
  const input = configFromEnv();
  if (values["data-dir"] !== undefined) input.dataDir = values["data-dir"] as string;
  if (values.watts !== undefined) input.wattsPerCore = values.watts as string;
  const config = loadConfig(input);
  const secondsToRun = Number(values.seconds);
  if (!(secondsToRun > 0 && secondsToRun <= 60)) throw usageError("--seconds must be between 0 and 60");
  await mkdir(config.dataDir, { recursive: true });
  out.step(`measuring fuel per second on one core for ${secondsToRun}s`);
  const result = await calibrate({
    dataDir: config.dataDir,
    wattsPerCore: config.wattsPerCore,
    wattsGiven: values.watts !== undefined,
    seconds: secondsToRun,
    ...(values.powercap === undefined ? {} : { powercapRoot: values.powercap as string }),
  });
  const power =
    result.power?.source === "rapl"
      ? `${result.wattsPerCore.toFixed(2)} W/core measured (RAPL: ${result.power.idleWatts.toFixed(1)} W idle, ${result.power.busyWatts.toFixed(1)} W with one core busy, ${result.power.cpus} CPUs)`
      : `${result.wattsPerCore} W/core configured (${result.power?.why ?? "given"})`;
  out.done(
    `${(result.fuelPerSecond / 1e9).toFixed(2)} × 10^9 fuel/s per core at ${power} → ${result.joulesPerFuel.toExponential(3)} J per fuel (${(result.joulesPerFuel * 1e15).toFixed(0)} µJ per 10^9 fuel); written to ${join(config.dataDir, "calibration.json")}`,
    { command: "calibrate", ...result },
  );
}

/** `joule bench`: the comparison benchmark in bench/compare.ts (the same as `npm run bench`). */
async function bench(args: string[]): Promise<void> {
  parse(args, {});
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "bench/compare.ts")], {
    stdio: "inherit",
    cwd: PROJECT_ROOT,
  });
  process.exitCode = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
}

/** What `joule keys` does, against a data dir here or a host's /v1/keys. */
interface KeysBackend {
  create(input: { name: string; scopes: Scope[]; functions?: string[] | undefined }): Promise<{
    key: string;
    info: KeyInfo;
  }>;
  list(): Promise<KeyInfo[]>;
  /** False when there was no active key of that id. */
  revoke(id: string): Promise<boolean>;
}

function remoteKeys(options: ClientOptions): KeysBackend {
  return {
    async create(input) {
      const { key, ...info } = await createKey(options, input);
      return { key, info };
    },
    list: async () => (await listKeys(options)).keys,
    async revoke(id) {
      try {
        await revokeKey(options, id);
        return true;
      } catch (error) {
        if (error instanceof JouleError && error.code === "JOULE_ERR_KEY_NOT_FOUND") return false;
        throw error;
      }
    },
  };
}

/**
 * `joule keys create|list|revoke`: API keys, in the data dir of a host on
 * this machine, or with `--host` through that host's /v1/keys (the key used
 * needs keys:manage).
 */
async function keysCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    "data-dir": { type: "string" },
    scopes: { type: "string" },
    functions: { type: "string" },
    name: { type: "string" },
  });
  const [action, id] = positionals;
  let db: ReturnType<typeof openAuthDb> | undefined;
  let keys: KeysBackend;
  if (values.host !== undefined) keys = remoteKeys(client(values));
  else {
    const input = configFromEnv();
    if (values["data-dir"] !== undefined) input.dataDir = values["data-dir"] as string;
    db = openAuthDb(loadConfig(input).dataDir);
    const local = new KeyStore(db);
    keys = {
      create: async (input) => local.create(input),
      list: async () => local.list(),
      revoke: async (id) => local.revoke(id),
    };
  }
  try {
    if (action === "create") {
      const list = (values.scopes as string | undefined)?.split(",").filter(Boolean) ?? [];
      const bad = list.filter((s) => !scopeSchema.safeParse(s).success);
      if (list.length === 0 || bad.length > 0) {
        throw usageError(
          `--scopes takes a comma-separated list of ${SCOPES.join(", ")}${bad.length ? `; not scopes: ${bad.join(", ")}` : ""}`,
        );
      }
      const functions = (values.functions as string | undefined)?.split(",").filter(Boolean);
      const { key, info } = await keys.create({
        name: (values.name as string | undefined) ?? "key",
        scopes: list as Scope[],
        functions,
      });
      out.done(
        `created key ${info.id} (${info.scopes.join(", ")}${info.functions ? `; functions ${info.functions.join(", ")}` : ""}); shown once:\n  ${key}`,
        {
          command: "keys create",
          key,
          ...info,
        },
      );
    } else if (action === "list") {
      const all = await keys.list();
      if (out.json) return out.done("", { command: "keys list", keys: all });
      for (const k of all)
        out.info(
          `${k.id}\t${k.name}\t${k.scopes.join(",")}\t${k.functions?.join(",") ?? "*"}\t${k.revoked ? "revoked" : "active"}`,
        );
    } else if (action === "revoke" && id) {
      if (!(await keys.revoke(id))) throw usageError(`no active key ${id}`);
      out.done(`revoked key ${id}`, { command: "keys revoke", id });
    } else {
      throw usageError("joule keys create --scopes S1,S2 [--functions F1,F2] [--name N] | list | revoke <id>");
    }
  } finally {
    db?.close();
  }
}

/**
 * `joule secrets set|list|delete`: the secret store of the host whose data
 * dir this is, sealed with that host's key (the same setting and default).
 */
async function secretsCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    "data-dir": { type: "string" },
    value: { type: "string" },
    functions: { type: "string" },
  });
  const [action, name] = positionals;
  const input = configFromEnv();
  if (values["data-dir"] !== undefined) input.dataDir = values["data-dir"] as string;
  const config = loadConfig(input);
  // The same key as the host's: JOULE_SECRETS_KEY_FILE, else beside the data dir (made here if this is first).
  const store = SecretStore.open({ dataDir: config.dataDir, keyFile: config.secretsKeyFile });
  if (store.keyInfo.generated) {
    out.info(`made the secrets key ${store.keyInfo.path}: keep a copy apart from the data dir`);
  }
  try {
    if (action === "set" && name && /^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
      // From --value, or stdin (so the value stays out of the shell history).
      const value = (values.value as string | undefined) ?? (await readStdin()).replace(/\r?\n$/, "");
      const list = values.functions as string | undefined;
      const functions = list === undefined ? undefined : list === "*" ? "*" : list.split(",").filter(Boolean);
      if (functions === undefined && !store.names().some((s) => s.name === name)) {
        throw usageError("--functions is required for a new secret: the functions that may use it, or '*'");
      }
      store.set(name, value, functions);
      out.done(`set secret ${name}; reference it as secret://${name}`, { command: "secrets set", name });
    } else if (action === "list") {
      const names = store.names();
      if (out.json) return out.done("", { command: "secrets list", secrets: names });
      for (const s of names)
        out.info(`${s.name}\t${s.functions === "*" ? "*" : s.functions.join(",")}\t${s.updatedAt}`);
    } else if (action === "delete" && name) {
      if (!store.delete(name)) throw usageError(`no secret ${name}`);
      out.done(`deleted secret ${name}`, { command: "secrets delete", name });
    } else {
      throw usageError(
        "joule secrets set <name> --functions F1,F2|'*' [--value V] | list | delete <name>   (names: letters, digits, . _ -)",
      );
    }
  } finally {
    store.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const COMMANDS: Record<string, (args: string[], out: Output) => Promise<void>> = {
  calibrate: calibrateCommand,
  secrets: secretsCommand,
  keys: keysCommand,
  bench,
  build,
  deploy,
  package: packageCommand,
  push: pushCommand,
  pull: pullCommand,
  invoke,
  list,
  delete: remove,
  serve,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  const out = new Output(args.includes("--json"));
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const run = COMMANDS[command];
  try {
    if (!run) throw usageError(`unknown command "${command}"`);
    if (args.includes("--help") || args.includes("-h")) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    await run(args, out);
  } catch (error) {
    out.fail(error);
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
