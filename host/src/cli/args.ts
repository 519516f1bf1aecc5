/**
 * What every command shares: the options common to all (`--json`, `--host`,
 * `--key`), strict parsing that turns a bad flag into a usage error, and
 * where the host and the key come from when not given.
 */
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { JouleError } from "../errors.ts";
import type { ClientOptions } from "./client.ts";
import { USAGE } from "./usage.ts";

export const DEFAULT_HOST = "http://127.0.0.1:8080";

export const COMMON = {
  json: { type: "boolean", default: false },
  host: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

export function usageError(message: string): JouleError {
  return new JouleError("JOULE_ERR_CLI_USAGE", `${message}\n\n${USAGE}`);
}

/** The host to talk to and the key to send: flags first, then the client settings of the environment. */
export function client(values: { host?: string | undefined; key?: string | undefined }): ClientOptions {
  const { JOULE_HOST, JOULE_API_KEY, JOULE_ADMIN_TOKEN } = process.env;
  const [token, tokenSource] = values.key
    ? [values.key, "--key"]
    : JOULE_API_KEY
      ? [JOULE_API_KEY, "JOULE_API_KEY"]
      : JOULE_ADMIN_TOKEN
        ? [JOULE_ADMIN_TOKEN, "JOULE_ADMIN_TOKEN"]
        : [undefined, undefined];
  return { host: values.host || JOULE_HOST || DEFAULT_HOST, token, tokenSource };
}

export function parse<const T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    const merged: typeof COMMON & T = { ...COMMON, ...options };
    return parseArgs({ args, options: merged, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError((error as Error).message);
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
