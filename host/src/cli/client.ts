/** The CLI's client of the admin API. */
import { readFile } from "node:fs/promises";
import type { KeyInfo } from "../auth/keys.ts";
import { FILE_FIELD, type ShippedFile } from "../capabilities/files-bundle.ts";
import { JouleError, type WireError } from "../errors.ts";
import type { DeploySettings } from "../manifest.ts";

export interface ClientOptions {
  host: string;
  token?: string | undefined;
  /** Where the token came from (`--key`, `JOULE_API_KEY`...), for messages. */
  tokenSource?: string | undefined;
}

/**
 * The host's 401, said for the CLI's user: where a key goes (`JOULE_API_KEY`
 * or `--key`) when none was sent, which setting held a key that was refused.
 */
export function unauthorized(options: ClientOptions, wire: WireError): JouleError {
  const message = options.token
    ? `${options.host} refused the API key from ${options.tokenSource ?? "--key"} (${wire.message}): check it, or make a new one with \`joule keys create\``
    : `${options.host} needs an API key: export JOULE_API_KEY=jk_… (the host printed one at its first start; \`joule keys create\` makes more) or pass --key K`;
  return new JouleError("JOULE_ERR_REQUEST_UNAUTHORIZED", message, wire.details);
}

async function call(options: ClientOptions, path: string, init: RequestInit = {}): Promise<unknown> {
  const headers = new Headers(init.headers);
  if (options.token) headers.set("authorization", `Bearer ${options.token}`);
  let response: Response;
  try {
    response = await fetch(new URL(path, options.host), { ...init, headers });
  } catch (error) {
    throw new JouleError(
      "JOULE_ERR_CLI_HOST_UNREACHABLE",
      `cannot reach ${options.host} (${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}); is \`joule serve\` running there? Set --host or JOULE_HOST.`,
    );
  }
  if (response.status === 204) return undefined;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  if (!response.ok) {
    const wire = (body as { error?: WireError })?.error;
    if (wire?.code === "JOULE_ERR_REQUEST_UNAUTHORIZED") throw unauthorized(options, wire);
    if (wire?.code) throw JouleError.fromWire(wire);
    throw new JouleError("JOULE_ERR_HOST_INTERNAL", `${response.status} from ${path}: ${text.slice(0, 200)}`);
  }
  return body;
}

export async function deployUpload(
  options: ClientOptions,
  name: string,
  componentPath: string,
  config: DeploySettings,
  files: readonly ShippedFile[] = [],
): Promise<Record<string, unknown>> {
  const form = new FormData();
  form.set("config", JSON.stringify(config));
  form.set("component", new Blob([await readFile(componentPath)], { type: "application/wasm" }), "component.wasm");
  // Each shipped file is a part named by its guest path (capabilities.files).
  for (const file of files)
    form.append(`${FILE_FIELD}${file.path}`, new Blob([file.bytes as Uint8Array<ArrayBuffer>]), "file");
  return (await call(options, `/v1/functions/${encodeURIComponent(name)}`, { method: "PUT", body: form })) as Record<
    string,
    unknown
  >;
}

export async function listFunctions(options: ClientOptions): Promise<{ functions: Array<Record<string, unknown>> }> {
  return (await call(options, "/v1/functions")) as { functions: Array<Record<string, unknown>> };
}

export async function deleteFunction(options: ClientOptions, name: string): Promise<void> {
  await call(options, `/v1/functions/${encodeURIComponent(name)}`, { method: "DELETE" });
}

/** Deploy by reference: the host pulls the artifact; its joule.json gives the settings. */
export async function deployReference(
  options: ClientOptions,
  name: string,
  ref: string,
  settings: Partial<DeploySettings> = {},
): Promise<Record<string, unknown>> {
  return (await call(options, `/v1/functions/${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ref, ...settings }),
  })) as Record<string, unknown>;
}

/** `/v1/keys`: a new key (its secret, once), the keys the caller may see, a revocation. */
export async function createKey(
  options: ClientOptions,
  input: { name: string; scopes: string[]; functions?: string[] | undefined },
): Promise<{ key: string } & KeyInfo> {
  return (await call(options, "/v1/keys", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(input),
  })) as { key: string } & KeyInfo;
}

export async function listKeys(options: ClientOptions): Promise<{ keys: KeyInfo[] }> {
  return (await call(options, "/v1/keys")) as { keys: KeyInfo[] };
}

export async function revokeKey(options: ClientOptions, id: string): Promise<void> {
  await call(options, `/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
}

/** `/v1/secrets`: names and audiences (never values), a set, a deletion. */
export async function listSecrets(
  options: ClientOptions,
): Promise<{ secrets: Array<{ name: string; functions: string[] | "*"; updatedAt: string }> }> {
  return (await call(options, "/v1/secrets")) as {
    secrets: Array<{ name: string; functions: string[] | "*"; updatedAt: string }>;
  };
}

export async function setSecret(
  options: ClientOptions,
  name: string,
  input: { value: string; functions?: string[] | "*" | undefined },
): Promise<void> {
  await call(options, `/v1/secrets/${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(input),
  });
}

/** False when the host has no such secret (that the key may manage). */
export async function deleteSecret(options: ClientOptions, name: string): Promise<boolean> {
  try {
    await call(options, `/v1/secrets/${encodeURIComponent(name)}`, { method: "DELETE" });
    return true;
  } catch (error) {
    if (error instanceof JouleError && error.code === "JOULE_ERR_SECRET_NOT_FOUND") return false;
    throw error;
  }
}
