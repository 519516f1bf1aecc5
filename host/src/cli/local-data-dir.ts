/**
 * The data dir of a host on this machine, for the commands that open it
 * directly (`joule keys`, `joule secrets` without --host). Left to the
 * default (`./.joule`), it must be one a host has made: opening a store
 * makes its files, and a command run in the wrong folder would otherwise
 * leave a new `.joule` and a new secrets key there, and secrets set in it
 * would never reach the host. A data dir named with --data-dir or
 * JOULE_DATA_DIR is the user's choice, made if new (so secrets can be set
 * before a host's first start).
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { type Config, configFromEnv, loadConfig } from "../config.ts";
import { usageError } from "./args.ts";

export function localDataDir(dataDirOption: string | undefined, command: string): Config {
  const input = configFromEnv();
  if (dataDirOption !== undefined) input.dataDir = dataDirOption;
  const config = loadConfig(input);
  if (input.dataDir === undefined && !existsSync(join(config.dataDir, "auth.db"))) {
    const shown = relative(process.cwd(), config.dataDir) || ".";
    throw usageError(
      `no host's data dir at ${shown}: run ${command} where the host keeps it, name it with --data-dir DIR (or JOULE_DATA_DIR), or manage a running host with --host URL --key K`,
    );
  }
  return config;
}
