/**
 * Where a deploy's component, settings and shipped files come from: an
 * upload (multipart), an OCI reference the host pulls, or, for the
 * operator alone, a path under the directories the operator listed
 * (JOULE_DEPLOY_DIRS). Every source is read with a bound and checked before
 * anything is stored; a caller with a deploy key never names a host path.
 */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { collectFiles, FILE_FIELD, MAX_FILE_BYTES, type ShippedFile } from "../capabilities/files-bundle.ts";
import type { Config } from "../config.ts";
import { JouleError } from "../errors.ts";
import { type DeploySettings, deploySettingsSchema, describeIssues } from "../manifest.ts";
import { type Artifact, shippedFiles } from "../oci/artifact.ts";
import { resolveForDeploy } from "../oci/deploy-source.ts";
import type { RegistryRefusal } from "../oci/registry-address-policy.ts";
import { readUnderRoots, underRoots } from "./host-path.ts";

export interface DeploySource {
  component: Uint8Array;
  config: DeploySettings;
  files: ShippedFile[];
  artifact?: { artifact: Artifact; ref: string } | undefined;
}

export const deployPathSchema = deploySettingsSchema
  .extend({
    /** A component under one of JOULE_DEPLOY_DIRS. */
    component: z.object({ path: z.string().min(1).max(4096) }).strict(),
    /** The function's directory under one of JOULE_DEPLOY_DIRS: where `capabilities.files` sources are read. */
    functionDir: z.string().min(1).max(4096).optional(),
  })
  .strict();

/** Deploy by reference: the artifact's joule.json gives the settings; fields given here override it. */
export const deployRefSchema = deploySettingsSchema
  .partial()
  .extend({
    /** `oci://<registry>/<repository>:<tag>` or `...@sha256:<digest>`. */
    ref: z.string().min(1).max(1100),
  })
  .strict();

export function parseSettings<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error);
    throw new JouleError("JOULE_ERR_MANIFEST_INVALID", `${what} is invalid: ${problems.join("; ")}`, { problems });
  }
  return parsed.data;
}

/** A shipped file's part, read no further than a file may be. */
async function readFilePart(stream: AsyncIterable<Buffer>, path: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > MAX_FILE_BYTES) {
      throw new JouleError("JOULE_ERR_MANIFEST_INVALID", `capabilities.files: ${path} is over ${MAX_FILE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** What a multipart parser throws for a body that is not well-formed multipart, as a coded 400. */
function malformed(error: unknown): unknown {
  if (error instanceof JouleError) return error;
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 413) return error; // a part over its size limit: the error mapping says 413
  const why = (error as Error).message ?? String(error);
  return new JouleError(
    "JOULE_ERR_REQUEST_INVALID",
    `the multipart body is malformed (${why.slice(0, 200)}); send multipart/form-data with a boundary, a "config" field and a "component" file`,
  );
}

/** An upload: a `component` file, a `config` field (the deploy settings) and `file:<guest path>` parts. */
export async function readUpload(request: FastifyRequest): Promise<DeploySource> {
  let component: Uint8Array | undefined;
  let configJson: unknown = {};
  const files: ShippedFile[] = [];
  try {
    for await (const part of request.parts()) {
      if (part.type === "file" && part.fieldname.startsWith(FILE_FIELD)) {
        const path = part.fieldname.slice(FILE_FIELD.length);
        files.push({ path, bytes: await readFilePart(part.file, path) });
      } else if (part.type === "file") {
        if (part.fieldname !== "component") {
          throw new JouleError(
            "JOULE_ERR_REQUEST_INVALID",
            `unexpected file field "${part.fieldname}"; send the component as "component" and shipped files as "file:<guest path>"`,
          );
        }
        component = await part.toBuffer();
      } else if (part.fieldname === "config") {
        try {
          configJson = JSON.parse(String(part.value));
        } catch {
          throw new JouleError("JOULE_ERR_MANIFEST_INVALID", 'the "config" field is not valid JSON', {
            problems: ["config: not JSON"],
          });
        }
      } else {
        throw new JouleError(
          "JOULE_ERR_REQUEST_INVALID",
          `unexpected field "${part.fieldname}"; fields are "config" and "component"`,
        );
      }
    }
  } catch (error) {
    throw malformed(error);
  }
  if (!component) throw new JouleError("JOULE_ERR_REQUEST_INVALID", 'the upload has no "component" file field');
  return { component, config: parseSettings(deploySettingsSchema, configJson, "the deploy config"), files };
}

/**
 * A deploy by reference: the host pulls the artifact (its component, its
 * joule.json and its shipped files) through the registry address policy.
 */
export async function readReference(
  body: Record<string, unknown>,
  config: Config,
  local: (digest: string) => Promise<Artifact | undefined>,
  onRefused?: (refusal: RegistryRefusal, ref: string) => void,
): Promise<DeploySource> {
  const { ref, ...given } = parseSettings(deployRefSchema, body, "the deploy request");
  const resolved = await resolveForDeploy(ref, {
    config,
    local,
    onRefused: onRefused && ((refusal) => onRefused(refusal, ref)),
  });
  const fromArtifact = resolved.parsed.functionManifest;
  const defaults = deploySettingsSchema.parse({});
  const pick = <K extends Exclude<keyof DeploySettings, "narrow">>(key: K): DeploySettings[K] =>
    Object.hasOwn(body, key) ? (given[key] as DeploySettings[K]) : (fromArtifact?.[key] ?? defaults[key]);
  const settings: DeploySettings = {
    env: pick("env"),
    limits: pick("limits"),
    scaling: pick("scaling"),
    isolation: pick("isolation"),
    snapshot: pick("snapshot"),
    public: pick("public"),
    capabilities: pick("capabilities"),
    energyBudget: pick("energyBudget"),
    ...(given.narrow ? { narrow: given.narrow } : {}),
  };
  return {
    component: resolved.artifact.layer.bytes,
    config: settings,
    files: shippedFiles(resolved.artifact),
    artifact: { artifact: resolved.artifact, ref: resolved.ref },
  };
}

/**
 * A deploy from the host's disk, for the operator: the component and the
 * function's directory must lie under JOULE_DEPLOY_DIRS. Missing, not a
 * regular file, too large and not allowed all answer the same.
 */
export async function readHostPath(body: unknown, config: Config): Promise<DeploySource> {
  const { component, functionDir, ...settings } = parseSettings(deployPathSchema, body, "the deploy request");
  const refused = (field: string) =>
    new JouleError(
      "JOULE_ERR_DEPLOY_SOURCE_NOT_FOUND",
      `${field} names no file this host deploys from: it must be a regular file (or, for functionDir, a directory) under JOULE_DEPLOY_DIRS, at most ${config.maxUploadBytes} bytes`,
      { field },
    );
  // Never the data dir, even when a listed directory holds it: it has the host's keys and secrets.
  const inDataDir = async (path: string) => (await underRoots([config.dataDir], path)) !== undefined;
  const bytes = (await inDataDir(component.path))
    ? undefined
    : await readUnderRoots(config.deployDirs, component.path, config.maxUploadBytes);
  if (!bytes) throw refused("component.path");
  const mounts = settings.capabilities.files;
  if (Object.keys(mounts).length > 0 && functionDir === undefined) {
    throw new JouleError(
      "JOULE_ERR_MANIFEST_INVALID",
      "capabilities.files needs functionDir, the function's directory the files are read from",
      { problems: ["functionDir: required with capabilities.files"] },
    );
  }
  let files: ShippedFile[] = [];
  if (functionDir !== undefined) {
    const dir = await underRoots(config.deployDirs, functionDir);
    if (!dir || (await inDataDir(dir))) throw refused("functionDir");
    files = await collectFiles(dir, mounts);
  }
  return { component: bytes, config: settings, files };
}
