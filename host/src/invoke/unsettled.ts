/**
 * A function whose `fetch()` returned a promise that nothing will ever
 * settle (it awaits a promise no one resolves, with no timer or request
 * pending) ends with the engine giving up: StarlingMonkey writes one line
 * to stderr and traps `unreachable`. Reported as that trap it said nothing
 * useful; recognized by the engine's line, it is said for what it is.
 */
import { JouleError } from "../errors.ts";

const ENGINE_LINE = /event loop error, but no exception is pending/;

export function unsettled(error: JouleError, logs: ReadonlyArray<{ stream: string; message: string }>): JouleError {
  if (error.code !== "JOULE_ERR_EXECUTION_TRAP" || !logs.some((line) => ENGINE_LINE.test(line.message))) return error;
  return new JouleError(
    "JOULE_ERR_EXECUTION_UNSETTLED",
    "fetch() returned a promise that never settles: it waits on a promise nothing resolves, with no timer or request left that could (a missing resolve(), or a missing return or await?)",
  );
}
