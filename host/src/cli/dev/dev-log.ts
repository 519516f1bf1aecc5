/**
 * What `joule dev` shows of the host's log: the function's own lines
 * (console, ctx.log) and the failures of its invocations, one readable line
 * each, not the host's JSON request log.
 */
import { Writable } from "node:stream";

const LEVELS: Record<number, string> = { 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

export function devLog(write: (line: string) => void): Writable {
  let partial = "";
  return new Writable({
    write(chunk, _encoding, done) {
      const lines = (partial + String(chunk)).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        const level = LEVELS[entry.level as number] ?? "info";
        if (entry.guest !== undefined) write(`  ${entry.function} ${entry.guest}: ${entry.msg}`);
        else if (typeof entry.code === "string" && entry.function !== undefined)
          write(`  ${entry.function} ${level}: ${entry.code}: ${entry.msg}`);
        else if (level === "error" || level === "fatal") write(`  host ${level}: ${entry.msg}`);
      }
      done();
    },
  });
}
