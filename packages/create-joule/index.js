#!/usr/bin/env node
// `npm create joule <dir> [--template http|hono|scheduled|events]`: what `joule init` does,
// through the CLI package's own scaffolder (the CLI and SDK versions it names are its own).
import { createRequire } from "node:module";
import { relative } from "node:path";
import { parseArgs } from "node:util";

const { positionals, values } = parseArgs({
  args: process.argv.slice(2),
  options: { template: { type: "string", short: "t" }, name: { type: "string" } },
  allowPositionals: true,
});
const [dir] = positionals;
if (!dir) {
  console.error("usage: npm create joule <dir> [-- --template http|hono|scheduled|events]");
  process.exit(1);
}
const require = createRequire(import.meta.url);
const cliPackage = require.resolve("@joule/cli/package.json");
const sdkPackage = createRequire(cliPackage).resolve("@joule/sdk/package.json");
const { scaffold, versionsFrom, ScaffoldError } = await import("@joule/cli/init");
try {
  const made = scaffold(dir, values, versionsFrom(cliPackage, sdkPackage));
  if (made.note) console.error(`note: ${made.note}`);
  const where = relative(process.cwd(), made.dir) || ".";
  console.log(`✓ made ${made.name} (${made.template}) in ${where}. Next:\n  cd ${where} && npm install && npm test`);
} catch (error) {
  if (!(error instanceof ScaffoldError)) throw error;
  console.error(`error: ${error.message}`);
  process.exit(1);
}
