/** `joule invoke <name> [path]`: call a deployed function and print its answer. */
import { JouleError } from "../../errors.ts";
import { client, parse, usageError } from "../args.ts";
import { type Output, seconds } from "../output.ts";

export async function invoke(args: string[], out: Output): Promise<void> {
  const { values, positionals } = parse(args, {
    method: { type: "string", short: "X", default: "GET" },
    data: { type: "string", short: "d" },
  });
  const [name, path = "/"] = positionals;
  if (!name) throw usageError("joule invoke needs a function name");
  const target = client(values);
  const url = new URL(`/fn/${encodeURIComponent(name)}${path.startsWith("/") ? path : `/${path}`}`, target.host);
  const started = performance.now();
  let response: Response;
  try {
    const headers: Record<string, string> = target.token ? { authorization: `Bearer ${target.token}` } : {};
    response = await fetch(url, { method: String(values.method), body: values.data as string | undefined, headers });
  } catch (error) {
    throw new JouleError("JOULE_ERR_CLI_HOST_UNREACHABLE", `cannot reach ${target.host}: ${(error as Error).message}`);
  }
  const body = await response.text();
  const ms = performance.now() - started;
  if (out.json) {
    out.done("", {
      command: "invoke",
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body,
      ms,
    });
    return;
  }
  process.stdout.write(body.endsWith("\n") ? body : `${body}\n`);
  process.stderr.write(
    `${response.status} in ${seconds(ms)} (cold start: ${response.headers.get("x-joule-cold-start")}, ${response.headers.get("x-joule-duration-us")} µs in the worker)\n`,
  );
  if (!response.ok) process.exitCode = 1;
}
