/**
 * Prometheus metrics (prom-client), one registry per host: what the seed
 * documents call `metrics.record { duration, memory, status }`, per function,
 * plus the worker pool's state.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { AuditLog } from "../auth/audit.ts";
import type { EnergyLedger } from "../energy/ledger.ts";
import type { WorkerPool } from "../pool/worker-pool.ts";
import type { InvokeStats } from "../runtime/types.ts";
import { STORE_NAMES } from "../store/storage-error.ts";
import type { StorageHealth } from "../store/storage-health.ts";

/** A series' function label (names are [a-z0-9-], so never escaped). */
const FUNCTION_LABEL = /[{,]function="([^"]*)"/;

export class HostMetrics {
  readonly registry = new Registry();
  readonly #invocations: Counter<"function" | "status">;
  readonly #errors: Counter<"function" | "code">;
  readonly #duration: Histogram<"function">;
  readonly #memory: Histogram<"function">;
  readonly #coldStarts: Counter<"function" | "instance">;
  readonly #fuel: Counter<"function">;

  constructor(pool: WorkerPool, ledger: EnergyLedger, storage: StorageHealth, audit: AuditLog) {
    const registers = [this.registry];
    new Counter({
      name: "joule_storage_failures_total",
      help: "Operations that failed for the data dir's sake, by store (auth.db, energy.db, kv.db, secrets.db, functions) and kind (full, read-only, io, damaged, locked, unavailable)",
      labelNames: ["store", "kind"],
      registers,
      collect() {
        this.reset();
        for (const [store, byKind] of storage.failures)
          for (const [kind, count] of byKind) this.inc({ store, kind }, count);
      },
    });
    new Gauge({
      name: "joule_storage_failing",
      help: "1 while a store of the data dir cannot be used (what /readyz names), else 0",
      labelNames: ["store"],
      registers,
      collect() {
        for (const store of STORE_NAMES) this.set({ store }, storage.isFailing(store) ? 1 : 0);
      },
    });
    new Gauge({
      name: "joule_audit_waiting_records",
      help: "Audit records not yet written to auth.db (grows only while it cannot be written)",
      registers,
      collect() {
        this.set(audit.waiting);
      },
    });
    new Counter({
      name: "joule_audit_dropped_total",
      help: "Audit records dropped because 10,000 were waiting already while auth.db could not be written",
      registers,
      collect() {
        this.reset();
        this.inc(audit.droppedTotal);
      },
    });
    // prom-client's own names already say process_ or nodejs_: prefixed joule_, not joule_process_.
    collectDefaultMetrics({ register: this.registry, prefix: "joule_" });
    // Gauges that prom-client names `_total`, which Prometheus keeps for counters (promtool
    // refuses them); the same counts stay, by type, in joule_nodejs_active_{handles,requests,resources}.
    for (const name of ["active_handles_total", "active_requests_total", "active_resources_total"]) {
      this.registry.removeSingleMetric(`joule_nodejs_${name}`);
    }
    this.#invocations = new Counter({
      name: "joule_invocations_total",
      help: "Invocations by function and HTTP status",
      labelNames: ["function", "status"],
      registers,
    });
    this.#errors = new Counter({
      name: "joule_invocation_errors_total",
      help: "Failed invocations by function and error code",
      labelNames: ["function", "code"],
      registers,
    });
    this.#duration = new Histogram({
      name: "joule_invocation_duration_seconds",
      help: "Time an invocation spent in its worker, instantiation included",
      labelNames: ["function"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.#memory = new Histogram({
      name: "joule_instance_memory_bytes",
      help: "Linear memory of the instance after an invocation",
      labelNames: ["function"],
      buckets: [65536, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30],
      registers,
    });
    this.#coldStarts = new Counter({
      name: "joule_cold_starts_total",
      help: "Invocations that had to create an instance; instance: prepared (made ahead in idle time) or new",
      labelNames: ["function", "instance"],
      registers,
    });
    this.#fuel = new Counter({
      name: "joule_fuel_used_total",
      help: "Fuel used by invocations (about one unit per Wasm instruction)",
      labelNames: ["function"],
      registers,
    });
    new Gauge({
      name: "joule_instances",
      help: "Instances per function over all workers, idle (warm) and in use",
      labelNames: ["function"],
      registers,
      collect() {
        this.reset();
        for (const [fn, count] of pool.instances()) this.set({ function: fn }, count);
      },
    });
    new Gauge({
      name: "joule_pool_in_flight",
      help: "Invocations running on the workers, waiting ones included",
      registers,
      collect() {
        this.set(pool.inFlight);
      },
    });
    new Gauge({
      name: "joule_pool_workers",
      help: "Worker threads in the invocation pool",
      registers,
      collect() {
        this.set(pool.threads);
      },
    });
    new Gauge({
      name: "joule_pool_utilization_ratio",
      help: "Share of the workers' time spent running invocations since start",
      registers,
      collect() {
        this.set(pool.utilization);
      },
    });
    new Gauge({
      name: "joule_energy_pending_charges",
      help: "Charges settled but not yet committed to energy.db (grows only while writes fail)",
      registers,
      collect() {
        this.set(ledger.pendingCharges);
      },
    });
    new Gauge({
      name: "joule_pool_queue_depth",
      help: "Invocations waiting for a worker",
      registers,
      collect() {
        this.set(pool.queueSize);
      },
    });
    new Counter({
      name: "joule_pool_images_sent_total",
      help: "Tasks that carried their function's image to a worker that lacked it (the rest went by reference)",
      registers,
      collect() {
        this.reset();
        this.inc(pool.imagesSent);
      },
    });
  }

  record(fn: string, status: number, stats: InvokeStats | undefined, errorCode?: string): void {
    this.#invocations.inc({ function: fn, status: String(status) });
    if (errorCode) this.#errors.inc({ function: fn, code: errorCode });
    if (!stats) return;
    this.#duration.observe({ function: fn }, stats.durationUs / 1e6);
    if (stats.memoryBytes > 0) this.#memory.observe({ function: fn }, stats.memoryBytes);
    if (stats.coldStart) this.#coldStarts.inc({ function: fn, instance: stats.prepared ? "prepared" : "new" });
    this.#fuel.inc({ function: fn }, stats.fuel);
  }

  /**
   * The exposition text; with `functions`, only the series of those
   * functions and the host-wide ones (no other function's name).
   */
  async exposition(functions?: ReadonlySet<string>): Promise<string> {
    const text = await this.registry.metrics();
    if (!functions) return text;
    return text
      .split("\n")
      .filter((line) => {
        const fn = FUNCTION_LABEL.exec(line)?.[1];
        return fn === undefined || functions.has(fn);
      })
      .join("\n");
  }

  close(): void {}

  /** A removed or redeployed function: nothing to forget here now that workers report their counts. */
  forget(_fn: string): void {}
}
