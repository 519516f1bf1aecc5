/**
 * One fuel budget across all the core modules of a component instance.
 *
 * Every metered core module imports the same three things from `joule:fuel`
 * (host/src/fuel/instrument.ts): `fuel`, the counter its code charges;
 * `reserve`, the rest of the invocation's budget; and `refill`. A FuelPort
 * holds them for one component instance, made before its first core module
 * is instantiated and shared by all of them. A FuelMeter, one per
 * invocation, puts one slice of the budget in the counter and the rest in
 * the reserve; when the counter runs out the next slice comes from the
 * reserve, taken by the guest's loop headers itself (a call there would
 * slow every loop down) or granted by `refill`, which the entry of a
 * function that calls invokes. When the reserve cannot cover the counter's
 * overdraw the guest traps at once (it traps itself: an exception thrown
 * from an import could be caught by the guest's catch_all). Fuel only
 * moves between the counter and the reserve, so what an invocation used is
 * exactly budget − counter − reserve: a run that used exactly its budget
 * succeeds, one unit more fails, whichever modules used it.
 *
 * Code keeps the counter in a local while it runs and stores it before any
 * call out of its module, loading it again after: so whichever module runs
 * next continues from the current count.
 */
import { REFILL_MODULE, REFILL_NAME, RESERVE_NAME, SHARED_FUEL_NAME, SLICE } from "../fuel/instrument.ts";

export { SLICE } from "../fuel/instrument.ts";

export interface FuelMeterOptions {
  /** Fuel per refill; SLICE (what loop headers take) unless a test needs another. */
  slice?: bigint;
  /**
   * Called at every refill before the next slice is granted, on the guest's
   * stack. If it throws, the guest gets no more fuel and traps, and `settle`
   * reports what it threw as `halted`. If it returns a promise, the guest is
   * granted its slice and suspends (JSPI: `refill` is a suspending import)
   * until it settles: the worker runs other invocations meanwhile. Only a
   * call on a promising stack (a request's `handle`) may do that. Loop
   * headers take slices without it.
   */
  onRefill?: () => void | Promise<void>;
}

/**
 * The fuel imports of one component instance, shared by its core modules.
 * The refill is pointed at the meter of whatever invocation runs; with none
 * it grants nothing, so guest code that runs outside an invocation traps
 * once the counter is spent.
 */
export class FuelPort {
  meter: FuelMeter | undefined;
  readonly fuel = new WebAssembly.Global({ value: "i64", mutable: true }, 0n);
  readonly reserve = new WebAssembly.Global({ value: "i64", mutable: true }, 0n);
  readonly refill = (): void | Promise<void> => this.meter?.refill();
  /** What the modules import as `refill`. */
  readonly #refillImport: WebAssembly.ImportValue;

  /**
   * `suspending`: the refill import is a JSPI suspending import, so that an
   * onRefill that returns a promise yields the worker to other invocations.
   * The host's component instances use it; their exports are then called on
   * a promising stack. A port used by synchronous callers (tests, the fuel
   * benchmarks, calibration) leaves it off: a suspending import called off a
   * promising stack throws even when it would not suspend.
   */
  constructor(options: { suspending?: boolean } = {}) {
    this.#refillImport = options.suspending ? suspending(this.refill) : this.refill;
  }

  /** `imports` with this port's fuel imports added. */
  imports(imports: WebAssembly.Imports | undefined): WebAssembly.Imports {
    return {
      ...imports,
      [REFILL_MODULE]: {
        [REFILL_NAME]: this.#refillImport,
        [SHARED_FUEL_NAME]: this.fuel,
        [RESERVE_NAME]: this.reserve,
      },
    };
  }
}

const ports = new WeakMap<WebAssembly.Instance, FuelPort>();

/** JSPI's WebAssembly.Suspending (Node 24), which TypeScript's lib does not describe yet. */
function suspending(fn: () => void | Promise<void>): WebAssembly.ImportValue {
  const { Suspending } = WebAssembly as unknown as {
    Suspending: new (fn: () => void | Promise<void>) => WebAssembly.ImportValue;
  };
  return new Suspending(fn);
}

/** Math.min for bigints. */
function smaller(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** Instantiates a metered core module against `port` (one per component instance); portOf finds it again. */
export function instantiateMetered(
  module: WebAssembly.Module,
  imports: WebAssembly.Imports | undefined,
  port: FuelPort,
): WebAssembly.Instance {
  const instance = new WebAssembly.Instance(module, port.imports(imports));
  ports.set(instance, port);
  return instance;
}

/** The fuel port a core instance was made with (instantiateMetered). */
export function portOf(instance: WebAssembly.Instance): FuelPort {
  const port = ports.get(instance);
  // Every module is metered at deploy; one made without its port must not run.
  if (!port) throw new Error("core instance not made by instantiateMetered");
  return port;
}

export interface Settled {
  used: bigint;
  exhausted: boolean;
  /** What onRefill threw, when it stopped the invocation. */
  halted?: { error: unknown };
}

export class FuelMeter {
  readonly budget: bigint;
  readonly #slice: bigint;
  readonly #onRefill: (() => void | Promise<void>) | undefined;
  #port: FuelPort | undefined;
  #halted: { error: unknown } | undefined;
  #refills = 0;

  constructor(budget: bigint, options: FuelMeterOptions = {}) {
    this.budget = budget;
    this.#slice = options.slice ?? SLICE;
    this.#onRefill = options.onRefill;
  }

  /** Starts the invocation on `port`: a slice in the counter, the rest in the reserve. */
  attach(port: FuelPort): void {
    this.#port = port;
    port.meter = this;
    const first = smaller(this.budget, this.#slice);
    port.fuel.value = first;
    port.reserve.value = this.budget - first;
  }

  /** Whether the meter was attached (instantiation attaches at the first core instance). */
  get attached(): boolean {
    return this.#port !== undefined;
  }

  /** How many times the guest asked for fuel. */
  get refills(): number {
    return this.#refills;
  }

  /**
   * The counter ran out at a function entry: the next slice, and what covers
   * the overdraw, or nothing; a promise when onRefill yields the worker.
   */
  refill(): void | Promise<void> {
    const port = this.#port;
    if (!port || this.#halted) return;
    this.#refills++;
    let pause: Promise<void> | undefined;
    if (this.#onRefill) {
      try {
        const result = this.#onRefill();
        if (result instanceof Promise) pause = result;
      } catch (error) {
        this.#halted = { error };
        return;
      }
    }
    const fuel = port.fuel.value;
    const reserve = port.reserve.value;
    const wanted = this.#slice - fuel;
    const take = smaller(reserve, wanted);
    port.reserve.value = reserve - take;
    port.fuel.value = fuel + take;
    return pause;
  }

  /** What the invocation used so far, without settling it (a cancelled call never returns to settle). */
  usedSoFar(): bigint {
    const port = this.#port;
    if (!port) return 0n;
    return this.budget - port.fuel.value - port.reserve.value;
  }

  /** The call is over: what it used, and whether that was more than the budget; the port lets go. */
  settle(): Settled {
    const port = this.#port;
    if (!port) return { used: 0n, exhausted: false };
    if (port.meter === this) port.meter = undefined;
    const fuel = port.fuel.value;
    const reserve = port.reserve.value;
    const used = this.budget - fuel - reserve;
    // Fuel only moves from the reserve to the counter and is spent from there: a reserve out of
    // range or more fuel than was budgeted was written by something else, and earns no credit.
    const tampered = reserve < 0n || used < 0n;
    const settled: Settled = { used: tampered ? this.budget : used, exhausted: tampered || used > this.budget };
    if (this.#halted) settled.halted = this.#halted;
    return settled;
  }
}
