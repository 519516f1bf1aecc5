/**
 * Collects what a guest logs during one invocation (ctx.log, stdout,
 * stderr) as whole lines, within a budget: bytes, where each line also
 * costs LINE_OVERHEAD (so a flood of empty lines is bounded too), and at
 * most MAX_LINES lines. Text without a newline is cut into lines of at most
 * the budget. The main thread writes the lines to the host's pino log,
 * tagged with the function and request id.
 */

export type LogStream = "stdout" | "stderr" | "debug" | "info" | "warn" | "error";

export interface LogLine {
  stream: LogStream;
  message: string;
}

/** What a line costs beyond its text: the log record around it. */
const LINE_OVERHEAD = 64;
const MAX_LINES = 1000;

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
    if (this.#full()) {
      if (bytes.includes(10)) this.#dropped++;
      return;
    }
    const text = (this.#partial[stream] ?? "") + decoder.decode(bytes);
    const lines = text.split("\n");
    let rest = lines.pop() ?? "";
    for (const line of lines) this.line(stream, line);
    if (rest.length > this.#limit) {
      this.line(stream, rest.slice(0, this.#limit));
      rest = "";
    }
    this.#partial[stream] = rest;
  }

  #full(): boolean {
    return this.#lines.length >= MAX_LINES || this.#used >= this.#limit;
  }

  line(stream: LogStream, message: string): void {
    const cost = message.length + LINE_OVERHEAD;
    if (this.#lines.length >= MAX_LINES || this.#used + cost > this.#limit) {
      this.#dropped++;
      return;
    }
    this.#used += cost;
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
