/** `joule init <dir> [--template T]`: a new function's folder (init/scaffold.ts says what is in it). */
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { parse, usageError } from "../args.ts";
import { ScaffoldError, scaffold, versionsFrom } from "../init/scaffold.ts";
import { TEMPLATES } from "../init/templates.ts";
import type { Output } from "../output.ts";
import { PROJECT_ROOT } from "../project.ts";

export async function init(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, { template: { type: "string", short: "t" }, name: { type: "string" } });
  const [dir, ...extra] = positionals;
  if (!dir || extra.length > 0)
    throw usageError(`joule init needs a new folder: joule init my-fn [--template ${TEMPLATES.join("|")}]`);
  const sdk = createRequire(join(PROJECT_ROOT, "package.json")).resolve("@joule/sdk/package.json");
  let made: ReturnType<typeof scaffold>;
  try {
    made = scaffold(
      dir,
      { template: values.template as string | undefined, name: values.name as string | undefined },
      versionsFrom(join(PROJECT_ROOT, "package.json"), sdk),
    );
  } catch (error) {
    if (error instanceof ScaffoldError) throw usageError(error.message);
    throw error;
  }
  const where = relative(process.cwd(), made.dir) || ".";
  if (made.note) out.warn(made.note);
  out.done(
    `made ${made.name} (${made.template}) in ${where}. Next:\n  cd ${where} && npm install\n  npm test              # the handler, without a host\n  npx joule build .     # the component\n  npx joule deploy . --host URL`,
    { command: "init", ...made },
  );
}
