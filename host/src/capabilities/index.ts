/**
 * The capabilities a function instance is linked against. Deny by default:
 * an interface not listed here cannot be imported (deploy refuses the
 * component with JOULE_ERR_CAPABILITY_MISSING), and nothing of jco's
 * preview2-shim, which would hand the guest the host's filesystem and
 * network, is ever linked.
 */
import { type BodySlot, bodyImports, type GuestBody } from "./body.ts";
import { clockImports } from "./clocks.ts";
import { type FilesGrant, filesImports, NO_FILES } from "./files.ts";
import { filesystemImports } from "./filesystem.ts";
import { IoScope, ioImports } from "./io.ts";
import { jouleHostImports } from "./joule-host.ts";
import { type Denial, type KvGrant, kvImports } from "./kv.ts";
import type { LogSink } from "./log-sink.ts";
import {
  type OutboundHttpGrant,
  outboundHttpImports,
  prepareOutboundHttp,
  resetOutboundHttp,
} from "./outbound-http.ts";
import { randomImports } from "./random.ts";
import { stdioImports } from "./stdio.ts";
import { wasiHttpImports } from "./wasi-http/index.ts";

/** Interfaces (unversioned, as jco names them) a component may import. */
export const GRANTABLE_INTERFACES: ReadonlySet<string> = new Set([
  "joule:function/host",
  "joule:function/body",
  "joule:function/kv",
  "joule:function/outbound-http",
  "joule:function/files",
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
  "wasi:http/outgoing-handler",
  "wasi:http/types",
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

/**
 * The interfaces that exist only for a grant, by the manifest key that
 * grants them: a component importing one without the grant is refused at
 * deploy (JOULE_ERR_CAPABILITY_MISSING).
 */
export const GRANTED_INTERFACES = {
  "joule:function/kv": "kv",
  "joule:function/outbound-http": "outboundHttp",
  "joule:function/files": "files",
} as const;

export interface InstanceGrants {
  env: Readonly<Record<string, string>>;
  sink: LogSink;
  kv: KvGrant;
  /** None when absent. */
  outboundHttp?: OutboundHttpGrant;
  files?: FilesGrant;
  /** Where denied capability calls are noted, for the audit log. */
  denials: Denial[];
}

export interface PreparedCapabilities {
  imports: Record<string, Record<string, unknown>>;
  /** Starts an invocation: its per-invocation budgets afresh, `signal` ending its waits, `body` its bodies. */
  beginInvocation(signal?: AbortSignal, body?: GuestBody): void;
  /** The instance's waits and pending timers (io.ts). */
  io: IoScope;
}

/** Each capability's per-instance state, and the imports built from it. */
export function prepareCapabilities(grants: InstanceGrants): PreparedCapabilities {
  const { env, sink, kv, denials } = grants;
  const http = prepareOutboundHttp(grants.outboundHttp ?? { origins: [] }, denials);
  const io = new IoScope();
  const slot: BodySlot = { body: undefined };
  return {
    imports: {
      ...ioImports(),
      ...clockImports(io),
      ...randomImports(),
      ...stdioImports(sink),
      ...filesystemImports(),
      ...jouleHostImports(sink, env, http),
      ...bodyImports(slot, io),
      ...kvImports(kv, denials),
      ...outboundHttpImports(http, io),
      ...wasiHttpImports(http, io),
      ...filesImports(grants.files ?? NO_FILES, denials),
    },
    beginInvocation(signal, body) {
      resetOutboundHttp(http);
      io.begin(signal);
      slot.body = body;
    },
    io,
  };
}

/** The imports alone, for callers that run one invocation per instance (tests, benchmarks). */
export function buildImports(grants: InstanceGrants): Record<string, Record<string, unknown>> {
  return prepareCapabilities(grants).imports;
}
