/**
 * Deploy-time snapshots run in the worker pool like any invocation, within
 * the function's fuel, memory and time limits (runtime/snapshot.ts does the
 * capturing). A failure fails the deploy with a coded error; the version
 * that was live keeps serving.
 */
import type { Denial } from "../capabilities/kv.ts";
import type { LogLine } from "../capabilities/log-sink.ts";
import type { Config } from "../config.ts";
import { JouleError } from "../errors.ts";
import type { LiveFunction } from "../runtime/registry.ts";
import type { CapturedSnapshot } from "../runtime/snapshot.ts";
import { NO_REQUEST, taskBase } from "../runtime/task.ts";
import type { WorkerPool } from "./worker-pool.ts";

/** Where what init logged at deploy goes (the host's log), and what it was refused (the audit log). */
export interface InitReport {
  log(line: LogLine, live: LiveFunction): void;
  denied(denial: Denial, live: LiveFunction, requestId: string): void;
}

export async function snapshotInPool(
  pool: WorkerPool,
  live: LiveFunction,
  config: Config,
  report: InitReport,
): Promise<CapturedSnapshot | undefined> {
  const task = { ...taskBase(live, config), request: NO_REQUEST, requestId: `snapshot-${live.record.version}` };
  let failure: { code: string; message: string };
  try {
    // The image init runs from is used for this task only: instances start from the snapshot's.
    const result = await pool.invoke({ ...task, snapshot: true }).finally(() => pool.retire(task.image));
    for (const line of result.logs) report.log(line, live);
    for (const denial of result.denials) report.denied(denial, live, task.requestId);
    if (result.ok) return result.snapshot;
    if (result.error.code === "JOULE_ERR_DEPLOY_SNAPSHOT") throw JouleError.fromWire(result.error);
    failure = result.error;
  } catch (error) {
    if (!(error instanceof JouleError) || error.code === "JOULE_ERR_DEPLOY_SNAPSHOT") throw error;
    failure = error;
  }
  throw new JouleError("JOULE_ERR_DEPLOY_INIT_FAILED", `init() failed at deploy: ${failure.message}`, {
    cause: failure.code,
  });
}
