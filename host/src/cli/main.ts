/**
 * `joule`: build, deploy, serve, invoke, list and delete functions.
 * Run `joule help` for usage; each command lives in commands/, one file each.
 */
import { usageError } from "./args.ts";
import { bench } from "./commands/bench.ts";
import { build } from "./commands/build.ts";
import { calibrateCommand } from "./commands/calibrate.ts";
import { deploy } from "./commands/deploy.ts";
import { dev } from "./commands/dev.ts";
import { init } from "./commands/init.ts";
import { invoke } from "./commands/invoke.ts";
import { keysCommand } from "./commands/keys.ts";
import { list, remove } from "./commands/list.ts";
import { packageCommand } from "./commands/package.ts";
import { pull } from "./commands/pull.ts";
import { push } from "./commands/push.ts";
import { secretsCommand } from "./commands/secrets.ts";
import { serve } from "./commands/serve.ts";
import { Output } from "./output.ts";
import { USAGE } from "./usage.ts";

const COMMANDS: Record<string, (args: string[], out: Output) => Promise<void>> = {
  calibrate: calibrateCommand,
  secrets: secretsCommand,
  keys: keysCommand,
  bench,
  init,
  dev,
  build,
  deploy,
  package: packageCommand,
  push,
  pull,
  invoke,
  list,
  delete: remove,
  serve,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  const out = new Output(args.includes("--json"));
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const run = COMMANDS[command];
  try {
    if (!run) throw usageError(`unknown command "${command}"`);
    if (args.includes("--help") || args.includes("-h")) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    await run(args, out);
  } catch (error) {
    out.fail(error);
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
