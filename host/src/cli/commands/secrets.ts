/**
 * `joule secrets set|list|delete`: the values env may reference as
 * secret://<name>: in the data dir of a host on this machine, sealed with
 * that host's key (the same setting and default), or with `--host` through
 * that host's /v1/secrets (the key used needs secrets:manage).
 */
import { type SecretAudience, SecretStore } from "../../capabilities/secrets.ts";
import { client, parse, readStdin, usageError } from "../args.ts";
import { type ClientOptions, deleteSecret, listSecrets, setSecret } from "../client.ts";
import { localDataDir } from "../local-data-dir.ts";
import type { Output } from "../output.ts";

interface SecretInfo {
  name: string;
  functions: SecretAudience;
  updatedAt: string;
}

/** What `joule secrets` does, against a data dir here or a host's /v1/secrets. */
interface SecretsBackend {
  list(): Promise<SecretInfo[]>;
  set(name: string, value: string, functions: SecretAudience | undefined): Promise<void>;
  /** False when there was no such secret. */
  delete(name: string): Promise<boolean>;
  close(): void;
}

function remoteSecrets(options: ClientOptions): SecretsBackend {
  return {
    list: async () => (await listSecrets(options)).secrets,
    set: async (name, value, functions) => {
      await setSecret(options, name, { value, functions });
    },
    delete: (name) => deleteSecret(options, name),
    close() {},
  };
}

function localSecrets(dataDirOption: string | undefined, out: Output): SecretsBackend {
  const config = localDataDir(dataDirOption, "joule secrets");
  const store = SecretStore.open({ dataDir: config.dataDir, keyFile: config.secretsKeyFile });
  if (store.keyInfo.generated) {
    out.info(`made the secrets key ${store.keyInfo.path}: keep a copy apart from the data dir`);
  }
  return {
    list: async () => store.names(),
    async set(name, value, functions) {
      if (functions === undefined && !store.names().some((s) => s.name === name)) {
        throw usageError("--functions is required for a new secret: the functions that may use it, or '*'");
      }
      store.set(name, value, functions);
    },
    delete: async (name) => store.delete(name),
    close: () => store.close(),
  };
}

export async function secretsCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    "data-dir": { type: "string" },
    value: { type: "string" },
    functions: { type: "string" },
  });
  const [action, name] = positionals;
  const usage =
    "joule secrets set <name> --functions F1,F2|'*' [--value V] | list | delete <name>   (names: letters, digits, . _ -)";
  if (!(action === "list" || ((action === "set" || action === "delete") && name))) throw usageError(usage);
  if (name !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(name)) throw usageError(usage);
  const store =
    values.host !== undefined
      ? remoteSecrets(client(values))
      : localSecrets(values["data-dir"] as string | undefined, out);
  try {
    if (action === "set" && name) {
      // From --value, or stdin (so the value stays out of the shell history).
      const value = (values.value as string | undefined) ?? (await readStdin()).replace(/\r?\n$/, "");
      const list = values.functions as string | undefined;
      const functions = list === undefined ? undefined : list === "*" ? "*" : list.split(",").filter(Boolean);
      await store.set(name, value, functions);
      out.done(`set secret ${name}; reference it as secret://${name}`, { command: "secrets set", name });
    } else if (action === "list") {
      const names = await store.list();
      if (out.json) return out.done("", { command: "secrets list", secrets: names });
      for (const s of names)
        out.info(`${s.name}\t${s.functions === "*" ? "*" : s.functions.join(",")}\t${s.updatedAt}`);
    } else if (action === "delete" && name) {
      if (!(await store.delete(name))) throw usageError(`no secret ${name}`);
      out.done(`deleted secret ${name}`, { command: "secrets delete", name });
    }
  } finally {
    store.close();
  }
}
