/**
 * wasi:cli stdio: stdout and stderr go to the host's structured log, a line
 * at a time, tagged with the function and the request; stdin is closed;
 * there is no terminal.
 */
import { InputStream, OutputStream } from "./io.ts";
import type { LogSink } from "./log-sink.ts";

class TerminalInput {}
class TerminalOutput {}

export function stdioImports(sink: LogSink) {
  const stdout = new OutputStream((bytes) => sink.write("stdout", bytes));
  const stderr = new OutputStream((bytes) => sink.write("stderr", bytes));
  const stdin = new InputStream();
  return {
    "wasi:cli/stdout": { getStdout: () => stdout },
    "wasi:cli/stderr": { getStderr: () => stderr },
    "wasi:cli/stdin": { getStdin: () => stdin },
    "wasi:cli/terminal-input": { TerminalInput },
    "wasi:cli/terminal-output": { TerminalOutput },
    "wasi:cli/terminal-stdin": { getTerminalStdin: () => undefined },
    "wasi:cli/terminal-stdout": { getTerminalStdout: () => undefined },
    "wasi:cli/terminal-stderr": { getTerminalStderr: () => undefined },
  };
}
