/**
 * Registry credentials, read the way container tools store them: a
 * Docker-style `config.json` (`{"auths": {"<registry>": {"auth": base64("user:pass")}}}`,
 * also `username`/`password` or `identitytoken`), as written by `docker login`,
 * `podman login` and `skopeo login`. The CLI looks at `--auth-file`,
 * `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`;
 * the host only at `JOULE_REGISTRY_AUTH_FILE`. Credential helpers
 * (`credsStore`) are not run: Joule never executes programs named in a file.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { JouleError } from "../errors.ts";

export interface Credentials {
  username?: string | undefined;
  password?: string | undefined;
  /** An OAuth2 refresh token (what `docker login` stores for some registries). */
  identityToken?: string | undefined;
}

export type CredentialLookup = (registry: string) => Credentials | undefined;

const entrySchema = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
});

const authFileSchema = z.object({ auths: z.record(z.string(), entrySchema).default({}) });

/** Keys in auth files are `host:port`, sometimes written as a URL (`https://host/v1/`). */
function registryKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
}

export function readAuthFile(path: string): CredentialLookup {
  let parsed: z.infer<typeof authFileSchema>;
  try {
    parsed = authFileSchema.parse(JSON.parse(readFileSync(path, "utf8")));
  } catch (error) {
    throw new JouleError(
      "JOULE_ERR_OCI_CREDENTIALS_INVALID",
      `the registry auth file ${path} could not be read as {"auths": {...}}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const table = new Map<string, Credentials>();
  for (const [key, entry] of Object.entries(parsed.auths)) {
    let { username, password } = entry;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    table.set(registryKey(key), { username, password, identityToken: entry.identitytoken });
  }
  return (registry) => table.get(registry);
}

/** The first auth file that exists among the usual places, for the CLI. */
export function defaultAuthFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env.REGISTRY_AUTH_FILE,
    env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, "config.json") : undefined,
    join(homedir(), ".docker", "config.json"),
  ];
  for (const path of candidates) {
    if (!path) continue;
    try {
      readFileSync(path);
      return path;
    } catch {}
  }
  return undefined;
}

/** Explicit credentials win over a file's. */
export function credentialLookup(options: {
  file?: string | undefined;
  registry?: string | undefined;
  explicit?: Credentials | undefined;
}): CredentialLookup {
  const fromFile = options.file ? readAuthFile(options.file) : () => undefined;
  return (registry) =>
    options.explicit && (!options.registry || options.registry === registry) ? options.explicit : fromFile(registry);
}
