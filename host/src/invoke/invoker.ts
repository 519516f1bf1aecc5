/**
 * One invocation of a deployed function, whatever asked for it (an HTTP
 * request today; schedules, events and workflows next): the function's
 * capacity (scaling.maxInstances and its queue), the energy reservation
 * (refused before anything runs when a budget cannot cover the fuel
 * limit), the run on a worker, the charge of what it used, and what it
 * left: its log lines, its capability denials in the audit log, metrics.
 * Callers format the outcome; they never decide policy.
 */
import type { AuditLog } from "../auth/audit.ts";
import { ANONYMOUS, type Principal } from "../auth/keys.ts";
import type { LogLine } from "../capabilities/log-sink.ts";
import type { Config } from "../config.ts";
import type { EnergyLedger } from "../energy/ledger.ts";
import { type EnergyModel, microjoules } from "../energy/model.ts";
import { JouleError } from "../errors.ts";
import type { ResponseSink, WorkerPool } from "../pool/worker-pool.ts";
import type { LiveFunction } from "../runtime/registry.ts";
import { taskBase } from "../runtime/task.ts";
import type { GuestRequest, GuestResponse, InvokeStats } from "../runtime/types.ts";
import type { HostMetrics } from "../server/metrics.ts";
import { CapacityGate } from "./capacity.ts";
import { unsettled } from "./unsettled.ts";

export interface InvokerDeps {
  config: Config;
  pool: WorkerPool;
  ledger: EnergyLedger;
  model: EnergyModel;
  audit: AuditLog;
  metrics: HostMetrics;
}

/** Where an invocation's own log lines and the host's notes about it go. */
export interface InvocationLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface InvocationCall {
  live: LiveFunction;
  request: GuestRequest;
  requestId: string;
  /** Who called, when they said; who pays is theirs, else the function's owner's. */
  principal: Principal | undefined;
  /** Where the call came from, for the audit log. */
  ip: string | null;
  /** Cancels the invocation (the client went away). */
  signal?: AbortSignal | undefined;
  /** The rest of the request body when `request.bodyStreamed`, as it arrives. */
  requestBody?: AsyncIterable<Uint8Array> | undefined;
  /** Where a response the function streams goes (its head, then its bytes). */
  sink?: ResponseSink | undefined;
  /** Made only when there is something to say: a child logger costs more than a tiny function's call. */
  log(): InvocationLog;
}

export interface InvocationOutcome {
  /** The function's answer, or the coded error the invocation ended with. */
  response?: GuestResponse;
  error?: JouleError;
  /** What the worker reported; absent when it never ran (refused, or its worker was lost). */
  stats?: InvokeStats;
  /** Energy charged, µJ. */
  energyUj: number;
  /** Time in the worker, µs (from dispatch when the worker could not say). */
  durationUs: number;
}

export class Invoker {
  readonly #deps: InvokerDeps;
  readonly #gate = new CapacityGate();

  constructor(deps: InvokerDeps) {
    this.#deps = deps;
  }

  /** Runs the call; refusals before it runs (capacity, energy) throw, everything after is in the outcome. */
  async invoke(call: InvocationCall): Promise<InvocationOutcome> {
    const { live } = call;
    const name = live.record.name;
    const { maxInstances, maxQueue } = live.record.scaling;
    const release = await this.#gate.acquire(name, maxInstances, maxQueue);
    try {
      return await this.#run(call);
    } finally {
      release();
    }
  }

  async #run(call: InvocationCall): Promise<InvocationOutcome> {
    const { config, pool, ledger, model, metrics } = this.#deps;
    const { live, requestId } = call;
    const name = live.record.name;
    const base = taskBase(live, config);
    // Reserve what the invocation could use at most; refused here, nothing runs. The caller's key
    // pays; an anonymous call of a public function is paid by whoever deployed it.
    const payer = call.principal?.id ?? live.record.owner ?? ANONYMOUS.id;
    const reservation = ledger.reserve(name, payer, microjoules(model, base.fuelLimit));
    const dispatched = performance.now();
    let result: Awaited<ReturnType<WorkerPool["invoke"]>>;
    try {
      result = await pool.invoke(
        { ...base, request: call.request, requestId },
        { signal: call.signal, requestBody: call.requestBody, sink: call.sink },
      );
    } catch (error) {
      // No figures came back (its worker was lost): charge what was reserved.
      ledger.settle(reservation, { microjoules: reservation.microjoules, fuel: base.fuelLimit, requestId });
      const failure = error instanceof JouleError ? error : new JouleError("JOULE_ERR_HOST_INTERNAL");
      metrics.record(name, failure.status, undefined, failure.code);
      return {
        error: failure,
        energyUj: reservation.microjoules,
        durationUs: Math.round((performance.now() - dispatched) * 1000),
      };
    }
    this.#report(call, result.logs, result.droppedLogs);
    for (const denial of result.denials) {
      this.#deps.audit.recordDenial(denial, {
        principal: (call.principal ?? ANONYMOUS).id,
        function: name,
        requestId,
        ip: call.ip,
      });
    }
    const energyUj = microjoules(model, result.stats.fuel);
    ledger.settle(reservation, { microjoules: energyUj, fuel: result.stats.fuel, requestId });
    const outcome = { stats: result.stats, energyUj, durationUs: result.stats.durationUs };
    if (!result.ok) {
      const error = unsettled(JouleError.fromWire(result.error), result.logs);
      call.log().warn({ code: error.code }, error.message);
      metrics.record(name, error.status, result.stats, error.code);
      return { ...outcome, error };
    }
    metrics.record(name, result.response.status, result.stats);
    return { ...outcome, response: result.response };
  }

  #report(call: InvocationCall, lines: readonly LogLine[], dropped: number): void {
    for (const line of lines) {
      const level = line.stream === "stderr" || line.stream === "error" || line.stream === "warn" ? "warn" : "info";
      call.log()[level]({ guest: line.stream }, line.message);
    }
    if (dropped > 0) call.log().warn({ dropped }, "guest log lines dropped: over the per-invocation limit");
  }
}
