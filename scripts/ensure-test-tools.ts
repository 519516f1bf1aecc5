/**
 * Makes sure the tools the tests run are on this machine, by group:
 *
 *   registry   the CNCF distribution registry (Debian `docker-registry`),
 *              `skopeo`, and `htpasswd` (`apache2-utils`, for the Basic-auth
 *              registry's bcrypt file): the OCI tests
 *   promtool   Prometheus's own checker (Debian `prometheus`): /metrics
 *              passes `promtool check metrics`
 *
 * Missing ones are installed with apt-get (one update, one install) when we
 * are root on a Debian-like system; otherwise each group's answer says why
 * not, and the tests that need it skip with that reason.
 *
 *   node scripts/ensure-test-tools.ts      (test/global-setup.ts runs it too)
 */
import { execFileSync } from "node:child_process";

const GROUPS = {
  registry: [
    { bin: "docker-registry", pkg: "docker-registry" },
    { bin: "skopeo", pkg: "skopeo" },
    { bin: "htpasswd", pkg: "apache2-utils" },
  ],
  promtool: [{ bin: "promtool", pkg: "prometheus" }],
} as const;

export type ToolGroup = keyof typeof GROUPS;
export type ToolsReady = Record<ToolGroup, { ok: true } | { ok: false; reason: string }>;

function has(bin: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Installs what is missing of every group; per group, whether its tools are there now. */
export function ensureTestTools(): ToolsReady {
  const groups = Object.keys(GROUPS) as ToolGroup[];
  const missing = groups.flatMap((group) => GROUPS[group].filter((t) => !has(t.bin)));
  let why = "";
  if (missing.length > 0) {
    const packages = missing.map((t) => t.pkg);
    if (process.getuid?.() !== 0 || !has("apt-get")) {
      why = `cannot install here (needs root and apt-get): apt-get install -y ${packages.join(" ")}`;
    } else {
      try {
        const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
        execFileSync("apt-get", ["update"], { stdio: "ignore", env, timeout: 300_000 });
        execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
          stdio: "ignore",
          env,
          timeout: 600_000,
        });
      } catch (error) {
        why = `apt-get install ${packages.join(" ")} failed: ${(error as Error).message.split("\n")[0]}`;
      }
    }
  }
  const ready = {} as ToolsReady;
  for (const group of groups) {
    const still = GROUPS[group].filter((t) => !has(t.bin)).map((t) => t.bin);
    ready[group] =
      still.length === 0
        ? { ok: true }
        : { ok: false, reason: `${still.join(", ")} not installed: ${why || "still missing after apt-get"}` };
  }
  return ready;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ready = ensureTestTools();
  for (const [group, result] of Object.entries(ready)) {
    process.stdout.write(result.ok ? `${group}: ready\n` : `${group}: ${result.reason}\n`);
  }
  process.exitCode = Object.values(ready).every((r) => r.ok) ? 0 : 1;
}
