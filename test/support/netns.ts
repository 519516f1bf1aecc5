/**
 * Runs a script in a network namespace of its own (`unshare --net`), for a
 * test whose scenario needs an address that is not loopback: a "public"
 * server, a DNS answer that points off the machine. Tests send traffic only
 * to loopback or to a namespace they made, so such an address must be one
 * the namespace holds itself.
 *
 * The namespace starts with nothing but a down loopback interface: the
 * helper brings it up and puts the extra addresses on it, so each one is
 * local to that namespace and nowhere else. There is no other interface and
 * no route out, so whatever the script does (and whatever a bug in the code
 * under test does), no packet leaves the namespace. It ends with the script.
 *
 * Making a namespace takes root (CAP_SYS_ADMIN, and CAP_NET_ADMIN for the
 * addresses). Where that is impossible, `netnsSkip()` says why, and the
 * tests that need it skip saying so; they never fall back to the host's
 * network.
 */
import { spawn, spawnSync } from "node:child_process";
import { isIP } from "node:net";

/** iproute2, at the path Debian installs it (root's PATH has /usr/sbin, a test runner's may not). */
const IP = "/usr/sbin/ip";

let probed: string | undefined;

/** Why a network namespace cannot be made here ("" when it can), found by making one. */
export function netnsSkip(): string {
  probed ??= probe();
  return probed;
}

function probe(): string {
  if (process.platform !== "linux") return `network namespaces are Linux's; this is ${process.platform}`;
  if (process.getuid?.() !== 0) return "making a network namespace (unshare --net) needs root";
  const tried = spawnSync("unshare", ["--net", IP, "link", "set", "lo", "up"], { encoding: "utf8", timeout: 10_000 });
  if (tried.error) return `unshare --net ${IP} failed: ${tried.error.message}`;
  if (tried.status !== 0) return `unshare --net ${IP} link set lo up failed: ${tried.stderr.trim()}`;
  return "";
}

export interface NetnsOptions {
  /** Arguments after the script's path. */
  args?: string[];
  /** Addresses (IPv4 or IPv6) to put on the namespace's loopback interface, beside 127.0.0.1 and ::1. */
  addresses?: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** The script is killed after this long. */
  timeoutMs?: number;
}

/** The shell that readies the namespace, then becomes the script. Addresses are checked by isIP first. */
function setup(addresses: string[]): string {
  return [
    "set -eu",
    // A fresh namespace holds one interface, loopback: were there any other, the script could reach out.
    `[ "$(${IP} -o link show | wc -l)" -eq 1 ] || { echo "the network namespace is not empty" >&2; exit 97; }`,
    `${IP} link set lo up`,
    ...addresses.map((address) =>
      isIP(address) === 6 ? `${IP} -6 addr add ${address}/128 dev lo` : `${IP} addr add ${address}/32 dev lo`,
    ),
    'exec "$@"',
  ].join("\n");
}

/**
 * Runs `script` (a TypeScript or JavaScript file) with this process's Node
 * in a fresh network namespace, and answers the JSON the script printed as
 * the last line of its stdout. Rejects, with what the script printed, when
 * it fails, prints no JSON or runs past `timeoutMs`.
 */
export async function runInNetns(script: string, options: NetnsOptions = {}): Promise<unknown> {
  const { args = [], addresses = [], env = {}, timeoutMs = 120_000 } = options;
  for (const address of addresses) {
    if (isIP(address) === 0) {
      throw new Error(`runInNetns: options.addresses: ${JSON.stringify(address)} is not an IP address`);
    }
  }
  const command = ["--net", "--", "sh", "-c", setup(addresses), "netns", process.execPath, script, ...args];
  const child = spawn("unshare", command, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  let timedOut = false;
  // unshare and sh each exec the next, so this pid is the script's own process by then.
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  }).finally(() => clearTimeout(timer));
  const said = `stdout:\n${stdout.slice(-4000)}\nstderr:\n${stderr.slice(-4000)}`;
  if (code !== 0) {
    const how = timedOut ? `was killed after ${timeoutMs} ms` : `ended with ${signal ?? `code ${code}`}`;
    throw new Error(`${script} in a network namespace ${how}\n${said}`);
  }
  const last = stdout.trimEnd().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`${script} in a network namespace printed no JSON as its last line\n${said}`);
  }
}
