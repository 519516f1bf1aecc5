/**
 * joule:function/host: the Joule-specific imports of the function world
 * (sdk/wit/world.wit): logging into the host log and the function's env.
 */
import type { LogSink } from "./log-sink.ts";
import { type OutboundHttpState, outboundRefusal } from "./outbound-http.ts";

const LEVELS = new Set(["debug", "info", "warn", "error"]);

export function jouleHostImports(sink: LogSink, env: Readonly<Record<string, string>>, http: OutboundHttpState) {
  const pairs = Object.entries(env);
  return {
    "joule:function/host": {
      log(level: string, message: string): void {
        sink.line(LEVELS.has(level) ? (level as "info") : "info", message);
      },
      environment: (): Array<[string, string]> => pairs.map(([k, v]) => [k, v]),
      outboundRefusal: (url: string): [string, string] | undefined => outboundRefusal(http, url),
    },
  };
}
