/** `joule secrets set|list|delete`: the values env may reference as secret://<name>. */
import { SecretStore } from "../../capabilities/secrets.ts";
import { configFromEnv, loadConfig } from "../../config.ts";
import { parse, readStdin, usageError } from "../args.ts";
import type { Output } from "../output.ts";

/**
 * `joule secrets set|list|delete`: the secret store of the host whose data
 * dir this is, sealed with that host's key (the same setting and default).
 */
export async function secretsCommand(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    "data-dir": { type: "string" },
    value: { type: "string" },
    functions: { type: "string" },
  });
  const [action, name] = positionals;
  const input = configFromEnv();
  if (values["data-dir"] !== undefined) input.dataDir = values["data-dir"] as string;
  const config = loadConfig(input);
  // The same key as the host's: JOULE_SECRETS_KEY_FILE, else beside the data dir (made here if this is first).
  const store = SecretStore.open({ dataDir: config.dataDir, keyFile: config.secretsKeyFile });
  if (store.keyInfo.generated) {
    out.info(`made the secrets key ${store.keyInfo.path}: keep a copy apart from the data dir`);
  }
  try {
    if (action === "set" && name && /^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
      // From --value, or stdin (so the value stays out of the shell history).
      const value = (values.value as string | undefined) ?? (await readStdin()).replace(/\r?\n$/, "");
      const list = values.functions as string | undefined;
      const functions = list === undefined ? undefined : list === "*" ? "*" : list.split(",").filter(Boolean);
      if (functions === undefined && !store.names().some((s) => s.name === name)) {
        throw usageError("--functions is required for a new secret: the functions that may use it, or '*'");
      }
      store.set(name, value, functions);
      out.done(`set secret ${name}; reference it as secret://${name}`, { command: "secrets set", name });
    } else if (action === "list") {
      const names = store.names();
      if (out.json) return out.done("", { command: "secrets list", secrets: names });
      for (const s of names)
        out.info(`${s.name}\t${s.functions === "*" ? "*" : s.functions.join(",")}\t${s.updatedAt}`);
    } else if (action === "delete" && name) {
      if (!store.delete(name)) throw usageError(`no secret ${name}`);
      out.done(`deleted secret ${name}`, { command: "secrets delete", name });
    } else {
      throw usageError(
        "joule secrets set <name> --functions F1,F2|'*' [--value V] | list | delete <name>   (names: letters, digits, . _ -)",
      );
    }
  } finally {
    store.close();
  }
}
