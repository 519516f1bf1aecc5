/**
 * The one catalog of Joule's errors. Every error the host or the CLI reports
 * is built here, with a stable code (`JOULE_ERR_<AREA>_<WHAT>`, never reused),
 * an HTTP status and a message that says what to do. Errors that cross a
 * thread travel as `{ code, message, details }` and are rebuilt with
 * `JouleError.fromWire`. docs/errors.md documents every code (a test checks).
 */

export const ERROR_CATALOG = {
  JOULE_ERR_REQUEST_INVALID: { status: 400, message: "The request is invalid" },
  JOULE_ERR_REQUEST_UNAUTHORIZED: { status: 401, message: "A valid API key is required" },
  JOULE_ERR_PERMISSION_DENIED: { status: 403, message: "The API key does not allow this" },
  JOULE_ERR_REQUEST_RATE_LIMITED: { status: 429, message: "Too many failed authentication attempts" },
  JOULE_ERR_ROUTE_NOT_FOUND: { status: 404, message: "No such route" },
  JOULE_ERR_KEY_NOT_FOUND: { status: 404, message: "No active API key has this id" },
  JOULE_ERR_BODY_TOO_LARGE: { status: 413, message: "The request body is over the limit" },
  JOULE_ERR_MANIFEST_INVALID: { status: 400, message: "The function manifest is invalid" },
  JOULE_ERR_FUNCTION_NOT_FOUND: { status: 404, message: "No function is deployed under this name" },
  JOULE_ERR_DEPLOY_SOURCE_NOT_FOUND: { status: 400, message: "The component to deploy was not found" },
  JOULE_ERR_DEPLOY_NOT_A_COMPONENT: { status: 400, message: "The uploaded bytes are not a WebAssembly component" },
  JOULE_ERR_DEPLOY_INVALID_COMPONENT: { status: 400, message: "The component could not be compiled" },
  JOULE_ERR_DEPLOY_WORLD_MISMATCH: {
    status: 400,
    message: "The component does not implement the Joule function world",
  },
  JOULE_ERR_DEPLOY_INIT_FAILED: { status: 422, message: "The function's init() failed at deploy" },
  JOULE_ERR_DEPLOY_SNAPSHOT: { status: 422, message: "The function's state after init() cannot be snapshotted" },
  JOULE_ERR_CAPABILITY_MISSING: { status: 400, message: "The component imports interfaces the host does not grant" },
  JOULE_ERR_SECRET_MISSING: { status: 503, message: "A secret the function's env references is not set" },
  JOULE_ERR_SECRET_UNREADABLE: {
    status: 503,
    message: "A secret the function's env references cannot be decrypted with the host's secrets key",
  },
  JOULE_ERR_SECRET_NOT_FOUND: { status: 404, message: "No secret of this name that the key may manage" },
  JOULE_ERR_SECRET_STORE_UNUSABLE: {
    status: 500,
    message: "The secret store cannot be opened: its key file is missing, unreadable, not private or not its key",
  },
  JOULE_ERR_CAPABILITY_DENIED: { status: 403, message: "The function was not granted this capability" },
  JOULE_ERR_EXECUTION_TRAP: { status: 502, message: "The function trapped" },
  JOULE_ERR_EXECUTION_FAILED: { status: 502, message: "The function failed" },
  JOULE_ERR_EXECUTION_UNSETTLED: {
    status: 502,
    message: "The function's fetch() returned a promise that never settles",
  },
  JOULE_ERR_EXECUTION_BAD_RESPONSE: { status: 502, message: "The function returned an invalid response" },
  JOULE_ERR_LIMIT_TIMEOUT: { status: 504, message: "The function ran past its time limit" },
  JOULE_ERR_REQUEST_CANCELLED: { status: 499, message: "The client went away before the function answered" },
  JOULE_ERR_LIMIT_FUEL: { status: 503, message: "The function used up its fuel" },
  JOULE_ERR_LIMIT_MEMORY: { status: 503, message: "The function needed more memory than its limit" },
  JOULE_ERR_FUEL_UNSUPPORTED: { status: 400, message: "A core module uses instructions Joule cannot meter" },
  JOULE_ERR_LIMIT_RESPONSE_TOO_LARGE: { status: 502, message: "The function's response body is over the limit" },
  JOULE_ERR_ENERGY_NO_BUDGET: { status: 404, message: "No energy budget is set for this function or principal" },
  JOULE_ERR_ENERGY_INSUFFICIENT: { status: 429, message: "Not enough energy budget left for this invocation" },
  JOULE_ERR_CAPACITY: { status: 503, message: "The function is at its capacity; retry later" },
  JOULE_ERR_HOST_NOT_READY: { status: 503, message: "The host is starting or stopping" },
  JOULE_ERR_HOST_STORAGE: {
    status: 503,
    message:
      "The host's data dir cannot be written or read now (full, read-only, failing or locked): nothing was changed; free space or fix the disk, then retry",
  },
  JOULE_ERR_HOST_INTERNAL: { status: 500, message: "Internal error" },
  JOULE_ERR_HOST_WORKER_LOST: { status: 503, message: "The worker running the function had to be replaced; retry" },
  JOULE_ERR_OCI_REFERENCE_INVALID: { status: 400, message: "The artifact reference is invalid" },
  JOULE_ERR_OCI_CREDENTIALS_INVALID: { status: 500, message: "The registry credentials could not be read" },
  JOULE_ERR_OCI_REGISTRY_UNREACHABLE: { status: 502, message: "The registry could not be reached" },
  JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED: { status: 502, message: "The registry refused the credentials" },
  JOULE_ERR_OCI_REGISTRY_DENIED: { status: 502, message: "The registry denied access to the repository" },
  JOULE_ERR_OCI_REGISTRY_RATE_LIMITED: { status: 503, message: "The registry is rate limiting requests" },
  JOULE_ERR_OCI_REGISTRY_ERROR: { status: 502, message: "The registry answered with an error" },
  JOULE_ERR_OCI_REGISTRY_NOT_ALLOWED: {
    status: 403,
    message: "The host does not pull from this address; an operator may list the registry in JOULE_PRIVATE_REGISTRIES",
  },
  JOULE_ERR_OCI_NOT_FOUND: { status: 404, message: "The artifact is not in the registry" },
  JOULE_ERR_OCI_DIGEST_MISMATCH: { status: 502, message: "Content does not match its digest" },
  JOULE_ERR_OCI_SIZE_MISMATCH: { status: 502, message: "A blob's length differs from its descriptor" },
  JOULE_ERR_OCI_TOO_LARGE: { status: 413, message: "A manifest or blob is over the size limit" },
  JOULE_ERR_OCI_MEDIA_TYPE: { status: 400, message: "The artifact is not a Wasm component artifact" },
  JOULE_ERR_OCI_INDEX_NOT_MANIFEST: { status: 400, message: "The reference names an image index, not a manifest" },
  JOULE_ERR_OCI_MANIFEST_INVALID: { status: 400, message: "The artifact's manifest or config is invalid" },
  JOULE_ERR_OCI_TAG_MOVED: { status: 409, message: "The tag moved while it was being pulled" },
  JOULE_ERR_OCI_LAYOUT_INVALID: { status: 400, message: "The OCI image layout is missing or invalid" },
  JOULE_ERR_BUILD_MANIFEST: { status: 400, message: "joule.json is missing or invalid" },
  JOULE_ERR_BUILD_SYNTAX: { status: 400, message: "The function's source does not compile" },
  JOULE_ERR_BUILD_TYPECHECK: { status: 400, message: "The function does not typecheck" },
  JOULE_ERR_BUILD_UNSUPPORTED_MODULE: {
    status: 400,
    message: "The function imports a module that cannot work in a function",
  },
  JOULE_ERR_BUILD_NO_DEFAULT_EXPORT: { status: 400, message: "The function has no default export" },
  JOULE_ERR_BUILD_PREINIT: { status: 400, message: "The function's top-level code failed during pre-initialization" },
  JOULE_ERR_BUILD_COMPONENTIZE: {
    status: 500,
    message: "The build toolchain failed turning the bundle into a component; not a mistake in the function",
  },
  JOULE_ERR_CLI_USAGE: { status: 400, message: "Invalid command line" },
  JOULE_ERR_CLI_HOST_UNREACHABLE: { status: 503, message: "The Joule host could not be reached" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** The form an error takes on the wire (HTTP bodies, messages between threads). */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export class JouleError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  /** `message` replaces the catalog's default message when given. */
  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ERROR_CATALOG[code].message);
    this.name = "JouleError";
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.details = details;
  }

  toWire(): WireError {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  static fromWire(wire: WireError): JouleError {
    const code = wire.code in ERROR_CATALOG ? wire.code : "JOULE_ERR_HOST_INTERNAL";
    return new JouleError(code, wire.message, wire.details);
  }
}

export function isJouleError(value: unknown): value is JouleError {
  return value instanceof JouleError;
}
