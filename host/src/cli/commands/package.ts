/** `joule package <dir>`: build if needed, then write the function as an OCI image layout. */
import { relative } from "node:path";
import { packageDirectory } from "../../oci/package-dir.ts";
import { parse, usageError } from "../args.ts";
import { megabytes, type Output, seconds } from "../output.ts";

export async function packageCommand(args: string[], out: Output): Promise<void> {
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
