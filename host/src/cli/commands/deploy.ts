/** `joule deploy <dir> | oci://<ref>`: build if needed and upload, or have the host pull an artifact. */
import { resolve } from "node:path";
import { buildFunction } from "../../build/build-function.ts";
import { collectFiles } from "../../capabilities/files-bundle.ts";
import type { DeploySettings } from "../../manifest.ts";
import { functionSettings } from "../../manifest.ts";
import { formatReference, parseReference } from "../../oci/reference.ts";
import { client, parse, usageError } from "../args.ts";
import { deployReference, deployUpload } from "../client.ts";
import { megabytes, type Output, seconds } from "../output.ts";

export async function deploy(args: string[], out: Output): Promise<void> {
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
  for (const warning of built.warnings) out.warn(warning);
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
