/**
 * How the CLI talks: progress on stderr while a step takes seconds (only on
 * a terminal), one line per result with the time it took, or JSON on stdout
 * with --json. Errors print as `error JOULE_ERR_...: message`.
 */
import { JouleError } from "../errors.ts";

export class Output {
  readonly json: boolean;
  readonly #tty = process.stderr.isTTY === true;
  #progress: string | undefined;

  constructor(json: boolean) {
    this.json = json;
  }

  /** Shows that a step started; `done` replaces the line. */
  step(text: string): void {
    if (this.json) return;
    this.#progress = text;
    process.stderr.write(this.#tty ? `\r\x1b[2K… ${text}` : "");
  }

  done(line: string, data: unknown): void {
    if (this.#tty && this.#progress) process.stderr.write("\r\x1b[2K");
    this.#progress = undefined;
    if (this.json) process.stdout.write(`${JSON.stringify(data)}\n`);
    else process.stdout.write(`✓ ${line}\n`);
  }

  /** Something the user should look at that did not stop the command; on stderr, so --json stays parseable. */
  warn(line: string): void {
    if (this.#tty && this.#progress) process.stderr.write("\r\x1b[2K");
    process.stderr.write(`warning: ${line}\n`);
  }

  info(line: string): void {
    if (!this.json) process.stdout.write(`${line}\n`);
  }

  fail(error: unknown): void {
    if (this.#tty && this.#progress) process.stderr.write("\r\x1b[2K");
    const wire =
      error instanceof JouleError
        ? error.toWire()
        : { code: "JOULE_ERR_HOST_INTERNAL", message: error instanceof Error ? error.message : String(error) };
    if (this.json) process.stdout.write(`${JSON.stringify({ error: wire })}\n`);
    else process.stderr.write(`error ${wire.code}: ${wire.message}\n`);
  }
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
