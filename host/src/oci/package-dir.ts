/**
 * `joule package <dir>`: the function's built component (built first if it
 * is missing or stale), its joule.json and the files its
 * capabilities.files mounts as an artifact, written as an OCI image layout
 * (default `<dir>/dist/oci`, tagged `latest`). The component is packaged as
 * built, byte for byte; the same component, joule.json and files always
 * give the same manifest digest.
 */
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { buildFunction } from "../build/build-function.ts";
import { collectFiles } from "../capabilities/files-bundle.ts";
import { JouleError } from "../errors.ts";
import { manifestSchema } from "../manifest.ts";
import { type Artifact, packageFunction } from "./artifact.ts";
import { isLayout, readLayout, writeLayout } from "./layout.ts";

export interface Packaged {
  artifact: Artifact;
  layout: string;
  tag: string;
  built: boolean;
}

export async function packageDirectory(
  functionDir: string,
  options: { out?: string | undefined; tag?: string | undefined } = {},
): Promise<Packaged> {
  const built = await buildFunction(functionDir);
  const raw: unknown = JSON.parse(await readFile(join(functionDir, "joule.json"), "utf8"));
  const mounts = manifestSchema.safeParse(raw).data?.capabilities.files ?? {};
  const files = await collectFiles(resolve(functionDir), mounts);
  const artifact = await packageFunction(await readFile(built.componentPath), raw, files);
  const layout = resolve(options.out ?? join(functionDir, "dist", "oci"));
  const tag = options.tag ?? "latest";
  await writeLayout(layout, artifact, tag);
  return { artifact, layout, tag, built: built.built };
}

/**
 * What `joule push` sends: an OCI layout directory (`dir` or `dir:tag`), or
 * a function directory, packaged first.
 */
export async function artifactFrom(
  source: string,
  maxLayerBytes: number,
): Promise<{ artifact: Artifact; from: string }> {
  let dir = source;
  let tag: string | undefined;
  if (!(await stat(dir).catch(() => undefined))) {
    const colon = source.lastIndexOf(":");
    if (colon > 0) {
      dir = source.slice(0, colon);
      tag = source.slice(colon + 1);
    }
  }
  if (await isLayout(dir)) {
    const { artifact } = await readLayout(dir, { tag, maxLayerBytes });
    return { artifact, from: `layout ${dir}${tag ? `:${tag}` : ""}` };
  }
  if (await stat(join(dir, "joule.json")).catch(() => undefined)) {
    const packaged = await packageDirectory(dir);
    return { artifact: packaged.artifact, from: `function ${dir} (packaged to ${packaged.layout})` };
  }
  throw new JouleError(
    "JOULE_ERR_OCI_LAYOUT_INVALID",
    `${source} is neither an OCI image layout (oci-layout, index.json) nor a function directory (joule.json)`,
  );
}
