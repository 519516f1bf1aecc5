/** `joule keys create|list|revoke`: API keys, in a data dir here or through a host's /v1/keys. */
import { type KeyInfo, KeyStore, openAuthDb, SCOPES, type Scope, scopeSchema } from "../../auth/keys.ts";
import { JouleError } from "../../errors.ts";
import { client, parse, usageError } from "../args.ts";
import { type ClientOptions, createKey, listKeys, revokeKey } from "../client.ts";
import { localDataDir } from "../local-data-dir.ts";
import type { Output } from "../output.ts";

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
export async function keysCommand(args: string[], out: Output): Promise<void> {
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
    db = openAuthDb(localDataDir(values["data-dir"] as string | undefined, "joule keys").dataDir);
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
