/** What every task for a function carries, from its record and the host's defaults. */
import type { Config } from "../config.ts";
import type { LiveFunction } from "./registry.ts";
import type { InvokeTask } from "./types.ts";

export type TaskBase = Omit<InvokeTask, "request" | "requestId">;

export function taskBase(live: LiveFunction, config: Config): TaskBase {
  const { limits, scaling, isolation } = live.record;
  return {
    image: live.image,
    fuelLimit: limits.fuel ?? config.defaultFuel,
    memoryLimitPages: (limits.memoryMb ?? config.defaultMemoryMb) * 16,
    maxResponseBytes: config.maxBodyBytes,
    maxLogBytes: config.maxLogBytesPerInvocation,
    isolation,
    timeoutMs: limits.timeoutMs ?? config.defaultTimeoutMs,
    idleTimeoutMs: scaling.idleTimeoutMs,
    keepWarm: scaling.minInstances,
  };
}

/** A request that does nothing: warm-only tasks carry it. */
export const NO_REQUEST: InvokeTask["request"] = {
  method: "GET",
  url: "http://warm/",
  mount: "",
  headers: [],
  body: new Uint8Array(),
  bodyStreamed: false,
};
