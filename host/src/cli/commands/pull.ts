/** `joule pull <ref> [dir]`: fetch an artifact from an OCI registry into an image layout. */
import { relative, resolve } from "node:path";
import { writeLayout } from "../../oci/layout.ts";
import { formatReference, parseReference } from "../../oci/reference.ts";
import { pull as pullArtifact } from "../../oci/transfer.ts";
import { parse, usageError } from "../args.ts";
import { megabytes, type Output, seconds } from "../output.ts";
import { REGISTRY_OPTIONS, registryCredentials } from "./registry-options.ts";

export async function pull(args: string[], out: Output): Promise<void> {
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
