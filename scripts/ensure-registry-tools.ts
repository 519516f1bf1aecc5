/**
 * Makes sure the tools the OCI tests run are on this machine: the CNCF
 * distribution registry (Debian `docker-registry`), `skopeo`, and `htpasswd`
 * (`apache2-utils`, for the Basic-auth registry's bcrypt file). Missing ones
 * are installed with apt-get when we are root on a Debian-like system;
 * otherwise the answer says why not, and the OCI tests skip with that reason.
 *
 *   node scripts/ensure-registry-tools.ts      (test/global-setup.ts runs it too)
 */
import { execFileSync } from "node:child_process";

const TOOLS: Array<{ bin: string; pkg: string }> = [
  { bin: "docker-registry", pkg: "docker-registry" },
  { bin: "skopeo", pkg: "skopeo" },
  { bin: "htpasswd", pkg: "apache2-utils" },
];

function has(bin: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function ensureRegistryTools(): { ok: true } | { ok: false; reason: string } {
  const missing = TOOLS.filter((t) => !has(t.bin));
  if (missing.length === 0) return { ok: true };
  const packages = missing.map((t) => t.pkg);
  if (process.getuid?.() !== 0 || !has("apt-get")) {
    return {
      ok: false,
      reason: `${missing.map((t) => t.bin).join(", ")} not installed and cannot install here (needs root and apt-get): apt-get install -y ${packages.join(" ")}`,
    };
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update"], { stdio: "ignore", env, timeout: 300_000 });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
      stdio: "ignore",
      env,
      timeout: 600_000,
    });
  } catch (error) {
    return {
      ok: false,
      reason: `apt-get install ${packages.join(" ")} failed: ${(error as Error).message.split("\n")[0]}`,
    };
  }
  const still = TOOLS.filter((t) => !has(t.bin));
  return still.length === 0
    ? { ok: true }
    : { ok: false, reason: `still missing after apt-get: ${still.map((t) => t.bin).join(", ")}` };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = ensureRegistryTools();
  process.stdout.write(result.ok ? "registry tools ready\n" : `${result.reason}\n`);
  process.exitCode = result.ok ? 0 : 1;
}
