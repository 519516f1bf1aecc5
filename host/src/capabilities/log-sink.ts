/**
 * Collects what a guest logs during one invocation (ctx.log, stdout,
 * stderr) as whole lines, up to a byte budget; the main thread writes them to
 * the host's pino log tagged with the function and request id.
 */

export type LogStream = "stdout" | "stderr" | "debug" | "info" | "warn" | "error";

export interface LogLine {
  stream: LogStream;
  message: string;
}

const decoder = new TextDecoder();

export class LogSink {
  readonly #limit: number;
  #used = 0;
  #dropped = 0;
  #lines: LogLine[] = [];
  #partial: Partial<Record<LogStream, string>> = {};

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** Bytes from a WASI stream: split into lines, keep the unfinished tail. */
  write(stream: LogStream, bytes: Uint8Array): void {
    const text = (this.#partial[stream] ?? "") + decoder.decode(bytes);
    const lines = text.split("\n");
    this.#partial[stream] = lines.pop() ?? "";
    for (const line of lines) this.line(stream, line);
  }

  line(stream: LogStream, message: string): void {
    const size = message.length;
    if (this.#used + size > this.#limit) {
      this.#dropped++;
      return;
    }
    this.#used += size;
    this.#lines.push({ stream, message });
  }

  /** Returns the invocation's lines and starts afresh for the next one. */
  drain(): { lines: LogLine[]; dropped: number } {
    for (const [stream, rest] of Object.entries(this.#partial)) {
      if (rest) this.line(stream as LogStream, rest);
    }
    const out = { lines: this.#lines, dropped: this.#dropped };
    this.#lines = [];
    this.#partial = {};
    this.#used = 0;
    this.#dropped = 0;
    return out;
  }
}
