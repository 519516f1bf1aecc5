/**
 * The data dir of a host on this machine, for the commands that open it
 * directly (`joule keys`, `joule secrets` without --host). It must be one a
 * host has made: opening a store makes its files, and a command run in the
 * wrong folder, or with a mistyped --data-dir, would otherwise leave a new
 * `.joule` and a new secrets key there, and secrets set in it would never
 * reach the host.
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { type Config, configFromEnv, loadConfig } from "../config.ts";
import { usageError } from "./args.ts";

export function localDataDir(dataDirOption: string | undefined, command: string): Config {
  const input = configFromEnv();
  if (dataDirOption !== undefined) input.dataDir = dataDirOption;
  const config = loadConfig(input);
  if (!existsSync(join(config.dataDir, "auth.db"))) {
    const shown = relative(process.cwd(), config.dataDir) || ".";
    throw usageError(
      `no host's data dir at ${shown}: run ${command} where the host keeps it, name it with --data-dir DIR (or JOULE_DATA_DIR), or manage a running host with --host URL --key K`,
    );
  }
  return config;
}
