/** `joule build <dir>...`: bundle and componentize functions, skipping those that are up to date. */
import { relative, resolve } from "node:path";
import { buildFunction } from "../../build/build-function.ts";
import { typecheck } from "../../build/typecheck.ts";
import { parse, usageError } from "../args.ts";
import { megabytes, type Output, seconds } from "../output.ts";

export async function build(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    force: { type: "boolean", default: false },
    typecheck: { type: "boolean", default: false },
  });
  if (positionals.length === 0)
    throw usageError("joule build needs a function directory, e.g. `joule build guests/hello`");
  for (const dir of positionals) {
    if (values.typecheck) {
      out.step(`typechecking ${dir}`);
      await typecheck(resolve(dir));
    }
    out.step(`building ${dir} (bundle, componentize)`);
    const result = await buildFunction(dir, { force: values.force === true });
    const where = relative(process.cwd(), result.componentPath);
    for (const warning of result.warnings) out.warn(warning);
    out.done(
      `${result.built ? "built" : "up to date:"} ${result.name} in ${seconds(result.durationMs)} (${megabytes(result.bytes)}) → ${where}`,
      {
        command: "build",
        name: result.name,
        built: result.built,
        durationMs: Math.round(result.durationMs),
        bytes: result.bytes,
        component: where,
        warnings: result.warnings,
      },
    );
  }
}
