/** `joule push <layout|dir> <ref>`: send an artifact to an OCI registry (a function dir is packaged first). */
import { artifactFrom } from "../../oci/package-dir.ts";
import { formatReference, parseReference } from "../../oci/reference.ts";
import { push as pushArtifact } from "../../oci/transfer.ts";
import { parse, usageError } from "../args.ts";
import { megabytes, type Output, seconds } from "../output.ts";
import { REGISTRY_OPTIONS, registryCredentials } from "./registry-options.ts";

export async function push(args: string[], out: Output): Promise<void> {
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
