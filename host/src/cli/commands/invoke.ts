/**
 * `joule invoke <name> [path]`: call a deployed function the way curl
 * would (`-X`, `-H` as often as needed, `-d BODY`, `-d @file`, `-d @-` for
 * stdin), print its answer, and exit non-zero when the answer is an error
 * (with --json too, after printing it). Joule's key goes in
 * `x-joule-authorization`, so an `Authorization` given with -H reaches the
 * function (server/credentials.ts).
 */
import { readFile } from "node:fs/promises";
import { JouleError, type WireError } from "../../errors.ts";
import { client, parse, readStdin, usageError } from "../args.ts";
import { unauthorized } from "../client.ts";
import { type Output, seconds } from "../output.ts";

/** `-H 'Name: value'` as a pair. */
function header(text: string): [string, string] {
  const colon = text.indexOf(":");
  if (colon <= 0) throw usageError(`-H takes 'Name: value', not ${JSON.stringify(text)}`);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

/** The body of `-d`: the text itself, a file's bytes (`@path`), or stdin (`@-`). */
async function body(data: string | undefined): Promise<Uint8Array | string | undefined> {
  if (data === undefined || !data.startsWith("@")) return data;
  if (data === "@-") return Buffer.from(await readStdin(), "utf8");
  try {
    return new Uint8Array(await readFile(data.slice(1)));
  } catch (error) {
    throw usageError(`-d ${data}: cannot read ${data.slice(1)} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

export async function invoke(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    method: { type: "string", short: "X" },
    header: { type: "string", short: "H", multiple: true },
    data: { type: "string", short: "d" },
  });
  const [name, path = "/", ...extra] = positionals;
  if (!name || extra.length > 0) throw usageError("joule invoke needs a function name, and optionally a path");
  const target = client(values);
  const url = new URL(`/fn/${encodeURIComponent(name)}${path.startsWith("/") ? path : `/${path}`}`, target.host);
  const headers = new Headers(((values.header as string[] | undefined) ?? []).map(header));
  if (target.token && !headers.has("x-joule-authorization")) {
    headers.set("x-joule-authorization", `Bearer ${target.token}`);
  }
  const payload = await body(values.data as string | undefined);
  // As curl: a body makes it a POST, of a form unless a content type is given.
  if (payload !== undefined && !headers.has("content-type"))
    headers.set("content-type", "application/x-www-form-urlencoded");
  const method = (values.method as string | undefined) ?? (payload === undefined ? "GET" : "POST");
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, { method, body: payload as BodyInit | undefined, headers });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new JouleError(
      "JOULE_ERR_CLI_HOST_UNREACHABLE",
      `cannot reach ${target.host} (${cause}); set --host or JOULE_HOST`,
    );
  }
  const text = await response.text();
  const ms = performance.now() - started;
  // Joule's own 401 (the function did not run, so no fuel): say where a key goes.
  if (response.status === 401 && !response.headers.has("x-joule-fuel")) {
    let wire: WireError | undefined;
    try {
      wire = (JSON.parse(text) as { error?: WireError }).error;
    } catch {}
    if (wire?.code === "JOULE_ERR_REQUEST_UNAUTHORIZED") throw unauthorized(target, wire);
  }
  if (!response.ok) process.exitCode = 1;
  if (out.json) {
    out.done("", {
      command: "invoke",
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: text,
      ms,
    });
    return;
  }
  process.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  process.stderr.write(
    `${response.status} in ${seconds(ms)} (cold start: ${response.headers.get("x-joule-cold-start")}, ${response.headers.get("x-joule-duration-us")} µs in the worker)\n`,
  );
}
