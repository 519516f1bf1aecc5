/** `joule list` and `joule delete <name>`: the functions a host has deployed. */
import { client, parse, usageError } from "../args.ts";
import { deleteFunction, listFunctions } from "../client.ts";
import type { Output } from "../output.ts";

export async function list(args: string[], out: Output): Promise<void> {
  const { values } = parse(args, {});
  const { functions } = await listFunctions(client(values));
  if (out.json) return out.done("", { command: "list", functions });
  if (functions.length === 0) out.info("no functions deployed");
  for (const f of functions) out.info(`${f.name}\t${f.version}\t${f.url}`);
}

export async function remove(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {});
  const name = positionals[0];
  if (!name) throw usageError("joule delete needs a function name");
  await deleteFunction(client(values), name);
  out.done(`deleted ${name}`, { command: "delete", name });
}
