/**
 * The capabilities a function instance is linked against. Deny by default:
 * an interface not listed here cannot be imported (deploy refuses the
 * component with JOULE_ERR_CAPABILITY_MISSING), and nothing of jco's
 * preview2-shim, which would hand the guest the host's filesystem and
 * network, is ever linked.
 */
import { clockImports } from "./clocks.ts";
import { filesystemImports } from "./filesystem.ts";
import { ioImports } from "./io.ts";
import { jouleHostImports } from "./joule-host.ts";
import { type Denial, type KvGrant, kvImports } from "./kv.ts";
import type { LogSink } from "./log-sink.ts";
import { randomImports } from "./random.ts";
import { stdioImports } from "./stdio.ts";

/** Interfaces (unversioned, as jco names them) a component may import. */
export const GRANTABLE_INTERFACES: ReadonlySet<string> = new Set([
  "joule:function/host",
  "joule:function/kv",
  "wasi:cli/stdin",
  "wasi:cli/stdout",
  "wasi:cli/stderr",
  "wasi:cli/terminal-input",
  "wasi:cli/terminal-output",
  "wasi:cli/terminal-stdin",
  "wasi:cli/terminal-stdout",
  "wasi:cli/terminal-stderr",
  "wasi:clocks/monotonic-clock",
  "wasi:clocks/wall-clock",
  "wasi:filesystem/preopens",
  "wasi:filesystem/types",
  "wasi:io/error",
  "wasi:io/poll",
  "wasi:io/streams",
  "wasi:random/random",
]);

/** Strips the `@version` jco reports on imports. */
export function interfaceName(specifier: string): string {
  const at = specifier.lastIndexOf("@");
  return at > 0 ? specifier.slice(0, at) : specifier;
}

export interface InstanceGrants {
  env: Readonly<Record<string, string>>;
  sink: LogSink;
  kv: KvGrant;
  /** Where denied capability calls are noted, for the audit log. */
  denials: Denial[];
}

export function buildImports({ env, sink, kv, denials }: InstanceGrants): Record<string, Record<string, unknown>> {
  return {
    ...ioImports(),
    ...clockImports(),
    ...randomImports(),
    ...stdioImports(sink),
    ...filesystemImports(),
    ...jouleHostImports(sink, env),
    ...kvImports(kv, denials),
  };
}
