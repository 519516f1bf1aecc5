/**
 * Why the instrumenter refused a module. The registry turns it into
 * JOULE_ERR_DEPLOY_INVALID_COMPONENT (malformed) or
 * JOULE_ERR_FUEL_UNSUPPORTED (valid Wasm the metering cannot handle):
 * nothing is ever passed through unmetered.
 */
export class FuelError extends Error {
  readonly kind: "malformed" | "unsupported";

  constructor(kind: "malformed" | "unsupported", message: string) {
    super(message);
    this.name = "FuelError";
    this.kind = kind;
  }
}
