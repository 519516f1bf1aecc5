/**
 * Prometheus metrics (prom-client), one registry per host: what the seed
 * documents call `metrics.record { duration, memory, status }`, per function,
 * plus the worker pool's state.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { EnergyLedger } from "../energy/ledger.ts";
import type { Scheduler } from "../pool/scheduler.ts";
import { INSTANCES_CHANNEL, type InstanceCount, type InvokeStats } from "../runtime/types.ts";

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
  /** Live instances per function and worker thread, as the workers report them; summed at scrape time. */
  readonly #instances = new Map<string, Map<number, number>>();
  readonly #counts = new BroadcastChannel(INSTANCES_CHANNEL);

  constructor(scheduler: Scheduler, ledger: EnergyLedger) {
    const registers = [this.registry];
    (this.#counts as unknown as { unref?: () => void }).unref?.();
    this.#counts.onmessage = (event) => {
      const { threadId, fn, count } = (event as MessageEvent<InstanceCount>).data;
      let perThread = this.#instances.get(fn);
      if (!perThread) {
        perThread = new Map();
        this.#instances.set(fn, perThread);
      }
      perThread.set(threadId, count);
    };
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
    const instances = this.#instances;
    new Gauge({
      name: "joule_instances",
      help: "Live (warm) instances per function, over all workers",
      labelNames: ["function"],
      registers,
      collect() {
        this.reset();
        // Workers replaced after a timeout took their instances with them.
        const live = scheduler.threadIds();
        for (const [fn, perThread] of instances) {
          let total = 0;
          for (const [thread, n] of perThread) {
            if (live.has(thread)) total += n;
            else perThread.delete(thread);
          }
          this.set({ function: fn }, total);
        }
      },
    });
    new Gauge({
      name: "joule_pool_workers",
      help: "Worker threads in the invocation pool",
      registers,
      collect() {
        this.set(scheduler.threads);
      },
    });
    new Gauge({
      name: "joule_pool_utilization_ratio",
      help: "Share of the pool's capacity used since start (piscina utilization)",
      registers,
      collect() {
        this.set(scheduler.utilization);
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
        this.set(scheduler.queueSize);
      },
    });
    new Counter({
      name: "joule_pool_images_sent_total",
      help: "Tasks that carried their function's image to a worker that lacked it (the rest went by reference)",
      registers,
      collect() {
        this.reset();
        this.inc(scheduler.imagesSent);
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

  close(): void {
    this.#counts.close();
  }

  /** A removed or redeployed function has no live instances of its old version. */
  forget(fn: string): void {
    this.#instances.delete(fn);
  }
}
