/**
 * Warnings from a build's pre-initialization: the marked lines the SDK's
 * build watch (sdk/src/build-watch.ts) printed for each read of the clock by
 * top-level code, mapped through the bundle's source map to the line of the
 * function (or of the package) that did it.
 */
import { SourceMap } from "node:module";
import { relative, resolve } from "node:path";

const MARK = "JOULE_BUILD_WARNING ";

/** `bundle.js:LINE:COL` frames of a SpiderMonkey stack (`fn@bundle.js:3:17`), innermost first. */
function frames(stack: string): Array<{ line: number; column: number }> {
  return [...stack.matchAll(/bundle\.js:(\d+):(\d+)/g)].map((m) => ({ line: Number(m[1]), column: Number(m[2]) }));
}

/** Where in the sources a bundle position is, as the user's cwd sees it; skips the SDK's own frames. */
function origin(map: SourceMap, distDir: string, stack: string): string | undefined {
  for (const { line, column } of frames(stack)) {
    const entry = map.findEntry(line - 1, column - 1) as {
      originalSource?: string;
      originalLine?: number;
      originalColumn?: number;
    };
    if (!entry.originalSource || /sdk\/src\/build-watch\.ts$/.test(entry.originalSource)) continue;
    const file = relative(process.cwd(), resolve(distDir, entry.originalSource));
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1];
    const at = `${file}:${(entry.originalLine ?? 0) + 1}:${(entry.originalColumn ?? 0) + 1}`;
    return pkg ? `${at} (package ${pkg})` : at;
  }
  return undefined;
}

/** The warnings in what the pre-initialized top level printed; `where` names the entry when no line is known. */
export function buildWarnings(output: string, sourceMap: string, distDir: string, where: string): string[] {
  const map = new SourceMap(JSON.parse(sourceMap));
  const warnings = new Set<string>();
  for (const line of output.split("\n")) {
    if (!line.startsWith(MARK)) continue;
    const { call, stack } = JSON.parse(line.slice(MARK.length)) as { call: string; stack: string };
    const at = origin(map, distDir, stack) ?? where;
    warnings.add(
      `${at}: top-level code called ${call} at build time: the value is the build's time, frozen into the snapshot every instance starts from; read the clock inside fetch()`,
    );
  }
  return [...warnings];
}
