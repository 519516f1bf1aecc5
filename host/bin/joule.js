#!/usr/bin/env node
// The `joule` command. Joule runs its TypeScript directly, which needs Node 24
// (the project pins it: `npx joule` and `npm run` put it first on PATH).
const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  console.error(
    `joule needs Node.js 24 or newer; this is ${process.version}. Run it through npx or npm scripts inside the project.`,
  );
  process.exit(1);
}
await import("../src/cli/main.ts");
