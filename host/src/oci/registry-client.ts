/**
 * A client of the OCI distribution API for one repository, on undici's
 * fetch. It authenticates the way registries ask: none,
 * Basic, or the Bearer token flow (401 with a `WWW-Authenticate: Bearer`
 * challenge → token from the realm, with Basic credentials if any → retry).
 * Every failure is a coded error: unreachable, 401, 403, 404, 429, any other
 * status. Bodies are read with a byte bound and verified against their
 * digest before they are returned; nothing unverified leaves this file.
 *
 * With an address policy (the host's pulls for a deploy), every connection
 * it opens, redirects and the token realm included, goes through
 * registry-address-policy.ts; without one (the CLI), it connects wherever
 * the user's reference says.
 */
import { type Agent, fetch, Headers, type Response } from "undici";
import { z } from "zod";
import { JouleError } from "../errors.ts";
import { parseChallenges } from "./challenge.ts";
import type { CredentialLookup, Credentials } from "./credentials.ts";
import { sha256, verifyBlob } from "./digest.ts";
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from "./media-types.ts";
import { isLoopback } from "./reference.ts";
import { type RegistryAddressPolicy, registryDispatcher } from "./registry-address-policy.ts";

export interface RegistryClientOptions {
  credentials?: CredentialLookup | undefined;
  /** Plain HTTP for this registry although it is not loopback. */
  insecure?: boolean | undefined;
  /** "pull" for reading, "pull,push" for writing: the scope asked of a token service. */
  actions?: "pull" | "pull,push";
  /** Per request, until the response headers arrive. */
  timeoutMs?: number | undefined;
  /** Where connections may go (the host's deploy path sets it); absent: anywhere. */
  addressPolicy?: RegistryAddressPolicy | undefined;
}

const tokenSchema = z.union([
  z.object({ token: z.string().min(1) }).transform((t) => t.token),
  z.object({ access_token: z.string().min(1) }).transform((t) => t.access_token),
]);

const DEFAULT_TIMEOUT_MS = 30_000;
/** A blob body may take this long to arrive, whatever its size (a stalled registry is cut off). */
const BODY_TIMEOUT_MS = 10 * 60_000;

export interface ManifestResponse {
  bytes: Uint8Array;
  digest: string;
  contentType: string | undefined;
}

export class RegistryClient {
  readonly registry: string;
  readonly repository: string;
  readonly #base: string;
  readonly #credentials: Credentials | undefined;
  readonly #scope: string;
  readonly #timeoutMs: number;
  readonly #dispatcher: Agent | undefined;
  #authorization: string | undefined;

  constructor(registry: string, repository: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.repository = repository;
    const plain = options.insecure === true || isLoopback(registry);
    this.#base = `${plain ? "http" : "https"}://${registry}`;
    this.#credentials = options.credentials?.(registry);
    this.#scope = `repository:${repository}:${options.actions ?? "pull"}`;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#dispatcher = options.addressPolicy ? registryDispatcher(options.addressPolicy) : undefined;
  }

  /**
   * Ends the connections a policy's dispatcher keeps open; the client is not
   * used after. Destroyed, not closed: a body a failed pull left unread must
   * not hold the deploy until the registry's keep-alive or body timeout.
   */
  async close(): Promise<void> {
    await this.#dispatcher?.destroy();
  }

  #via(): { dispatcher: Agent } | Record<string, never> {
    return this.#dispatcher ? { dispatcher: this.#dispatcher } : {};
  }

  get plainHttp(): boolean {
    return this.#base.startsWith("http:");
  }

  #url(path: string): string {
    return `${this.#base}/v2/${this.repository}/${path}`;
  }

  /**
   * One request, authenticated on demand: a 401 is answered once with what
   * its challenge asks for, then the request is sent again.
   */
  async #request(method: string, url: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}) {
    let answered = false;
    for (;;) {
      const headers = new Headers(init.headers);
      if (this.#authorization) headers.set("authorization", this.#authorization);
      // The deadline covers sending the body and the answer's headers (a second per MiB sent on top);
      // reading the answer's body has its own (readBytesBounded), so a large layer is not cut off.
      const controller = new AbortController();
      const sending = this.#timeoutMs + ((init.body?.byteLength ?? 0) / (1024 * 1024)) * 1000;
      const timer = setTimeout(
        () => controller.abort(new Error(`no answer within ${Math.round(sending / 1000)} s`)),
        sending,
      );
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers,
          body: init.body as Uint8Array<ArrayBuffer> | undefined,
          // Redirect hops connect through the dispatcher too, so each one is checked by the policy.
          redirect: "follow",
          signal: controller.signal,
          ...this.#via(),
        });
      } catch (error) {
        rethrowRefusal(error);
        const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
        throw new JouleError(
          "JOULE_ERR_OCI_REGISTRY_UNREACHABLE",
          `cannot reach the registry ${this.registry} (${cause}); check the address${this.plainHttp ? "" : ", and that it speaks HTTPS (--insecure for a plain-HTTP registry)"}`,
          { registry: this.registry },
        );
      } finally {
        clearTimeout(timer);
      }
      if (response.status !== 401 || answered) return response;
      answered = true;
      await response.body?.cancel();
      if (!(await this.#answer(response.headers.get("www-authenticate") ?? ""))) return response;
    }
  }

  /** Sets the authorization a challenge asks for; false when there is nothing to answer with. */
  async #answer(header: string): Promise<boolean> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = this.#basic();
    if (bearer?.params.realm) {
      this.#authorization = `Bearer ${await this.#token(bearer.params.realm, bearer.params.service, bearer.params.scope)}`;
      return true;
    }
    if (challenges.some((c) => c.scheme === "basic") && basic) {
      this.#authorization = basic;
      return true;
    }
    return false;
  }

  #basic(): string | undefined {
    const c = this.#credentials;
    if (c?.username === undefined || c.password === undefined) return undefined;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
  }

  async #token(realm: string, service: string | undefined, challengeScope: string | undefined): Promise<string> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw this.#failure(401, "the registry's token realm is not a URL");
    }
    // Credentials go over TLS only, unless the registry itself was allowed plain HTTP.
    if (url.protocol !== "https:" && !(url.protocol === "http:" && (this.plainHttp || isLoopback(url.host)))) {
      throw new JouleError(
        "JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED",
        `the registry ${this.registry} sends credentials to ${url.origin}, which is not HTTPS: refused`,
      );
    }
    if (service) url.searchParams.set("service", service);
    url.searchParams.set("scope", challengeScope?.includes(this.repository) ? challengeScope : this.#scope);
    const headers: Record<string, string> = {};
    const basic = this.#basic();
    if (basic) headers.authorization = basic;
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(this.#timeoutMs), ...this.#via() });
    } catch (error) {
      rethrowRefusal(error);
      throw new JouleError(
        "JOULE_ERR_OCI_REGISTRY_UNREACHABLE",
        `cannot reach the registry's token service ${url.origin} (${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message})`,
      );
    }
    if (!response.ok)
      throw this.#failure(
        response.status === 401 || response.status === 403 ? 401 : response.status,
        "the token service refused",
      );
    const text = await readBounded(response, 1024 * 1024, "the token response");
    const parsed = tokenSchema.safeParse(safeJson(text));
    if (!parsed.success) throw this.#failure(401, "the token service answered without a token");
    return parsed.data;
  }

  /** A coded error for a failed response; `what` names what was asked for. */
  #failure(status: number, what: string, response?: Response, detail = ""): JouleError {
    const details = {
      registry: this.registry,
      repository: this.repository,
      status,
      ...(detail ? { registryError: detail } : {}),
    };
    const suffix = detail ? ` (${detail})` : "";
    switch (status) {
      case 401:
        return new JouleError(
          "JOULE_ERR_OCI_REGISTRY_UNAUTHORIZED",
          `${this.registry} refused ${this.#credentials ? "the credentials" : "an anonymous request"} for ${what}${suffix}: log in (an auth file such as ~/.docker/config.json, or --username with --password-stdin)`,
          details,
        );
      case 403:
        return new JouleError(
          "JOULE_ERR_OCI_REGISTRY_DENIED",
          `${this.registry} denied ${what}${suffix}: these credentials may not ${this.#scope.endsWith("push") ? "push to" : "pull from"} ${this.repository}`,
          details,
        );
      case 404:
        return new JouleError(
          "JOULE_ERR_OCI_NOT_FOUND",
          `${this.registry}/${this.repository}: ${what} not found${suffix}`,
          details,
        );
      case 429: {
        const retry = response?.headers.get("retry-after");
        return new JouleError(
          "JOULE_ERR_OCI_REGISTRY_RATE_LIMITED",
          `${this.registry} is rate limiting requests${retry ? `; retry after ${retry} s` : "; retry later"}`,
          { ...details, retryAfter: retry ?? undefined },
        );
      }
      default:
        return new JouleError(
          "JOULE_ERR_OCI_REGISTRY_ERROR",
          `${this.registry} answered ${status} to ${what}${suffix}`,
          details,
        );
    }
  }

  async #fail(response: Response, what: string): Promise<never> {
    const text = await readBounded(response, 64 * 1024, "an error body").catch(() => "");
    const errors = (safeJson(text) as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors;
    const detail = errors?.[0] ? `${errors[0].code ?? ""} ${errors[0].message ?? ""}`.trim().slice(0, 200) : "";
    throw this.#failure(response.status, what, response, detail);
  }

  /** Whether the registry has the blob (HEAD); a size that differs from the descriptor counts as not. */
  async hasBlob(digest: string, size?: number): Promise<boolean> {
    const response = await this.#request("HEAD", this.#url(`blobs/${digest}`));
    if (response.status === 404) return false;
    if (!response.ok) return this.#fail(response, `blob ${digest}`);
    const length = response.headers.get("content-length");
    return size === undefined || length === null || Number(length) === size;
  }

  /** A blob, read with its descriptor's size as the bound, verified. */
  async getBlob(descriptor: { digest: string; size: number }, what = `blob ${descriptor.digest}`): Promise<Uint8Array> {
    const response = await this.#request("GET", this.#url(`blobs/${descriptor.digest}`));
    if (!response.ok) return this.#fail(response, what);
    const length = response.headers.get("content-length");
    if (length !== null && Number(length) !== descriptor.size) {
      await response.body?.cancel();
      throw new JouleError(
        "JOULE_ERR_OCI_SIZE_MISMATCH",
        `${what} is ${length} bytes, its descriptor says ${descriptor.size}: refused`,
        { digest: descriptor.digest, expected: descriptor.size, actual: Number(length) },
      );
    }
    const bytes = await readBytesBounded(response, descriptor.size, what, descriptor.digest);
    verifyBlob(bytes, descriptor, what);
    return bytes;
  }

  /**
   * Uploads a blob unless the registry has it. Monolithic (POST, then one
   * PUT with the bytes) up to `chunkSize`; above it, chunked (PATCH each
   * chunk with its Content-Range, then PUT to close).
   */
  async putBlob(
    bytes: Uint8Array,
    digest: string,
    options: { chunkSize?: number | undefined } = {},
  ): Promise<"exists" | "uploaded"> {
    if (await this.hasBlob(digest, bytes.byteLength)) return "exists";
    const started = await this.#request("POST", this.#url("blobs/uploads/"), { headers: { "content-length": "0" } });
    if (started.status !== 202) return this.#fail(started, `starting the upload of ${digest}`);
    await started.body?.cancel();
    let location = this.#location(started);
    const chunkSize = options.chunkSize;
    if (chunkSize !== undefined && chunkSize > 0 && bytes.byteLength > chunkSize) {
      for (let start = 0; start < bytes.byteLength; start += chunkSize) {
        const chunk = bytes.subarray(start, Math.min(start + chunkSize, bytes.byteLength));
        const response = await this.#request("PATCH", location, {
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${start}-${start + chunk.byteLength - 1}`,
            "content-length": String(chunk.byteLength),
          },
          body: chunk,
        });
        if (response.status !== 202) return this.#fail(response, `uploading a chunk of ${digest}`);
        await response.body?.cancel();
        location = this.#location(response);
      }
      const done = await this.#request("PUT", withDigest(location, digest), { headers: { "content-length": "0" } });
      if (done.status !== 201) return this.#fail(done, `completing the upload of ${digest}`);
      await done.body?.cancel();
    } else {
      const done = await this.#request("PUT", withDigest(location, digest), {
        headers: { "content-type": "application/octet-stream", "content-length": String(bytes.byteLength) },
        body: bytes,
      });
      if (done.status !== 201) return this.#fail(done, `uploading ${digest}`);
      await done.body?.cancel();
    }
    return "uploaded";
  }

  #location(response: Response): string {
    const location = response.headers.get("location");
    if (!location) throw this.#failure(502, "an upload (no Location header in the answer)");
    return new URL(location, this.#base).href;
  }

  /** The digest a tag or digest resolves to now (HEAD), or undefined if there is none. */
  async resolve(reference: string): Promise<string | undefined> {
    const response = await this.#request("HEAD", this.#url(`manifests/${reference}`), {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (response.status === 404) return undefined;
    if (!response.ok) return this.#fail(response, `manifest ${reference}`);
    const digest = response.headers.get("docker-content-digest");
    if (digest) return digest;
    return (await this.getManifest(reference)).digest;
  }

  /**
   * A manifest by tag or digest, at most 4 MiB. By digest it must hash to
   * that digest; by tag its digest is computed here (the registry's
   * Docker-Content-Digest header, if any, must agree).
   */
  async getManifest(reference: string): Promise<ManifestResponse> {
    const response = await this.#request("GET", this.#url(`manifests/${reference}`), {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!response.ok) return this.#fail(response, `manifest ${reference}`);
    const length = Number(response.headers.get("content-length") ?? "0");
    if (length > MAX_MANIFEST_BYTES) {
      await response.body?.cancel();
      throw new JouleError(
        "JOULE_ERR_OCI_TOO_LARGE",
        `the manifest ${reference} is ${length} bytes, over the 4 MiB limit`,
      );
    }
    const bytes = await readBytesBounded(response, MAX_MANIFEST_BYTES, `the manifest ${reference}`);
    const digest = sha256(bytes);
    const claimed = response.headers.get("docker-content-digest");
    if (reference.startsWith("sha256:")) verifyBlob(bytes, { digest: reference }, `the manifest ${reference}`);
    else if (claimed?.startsWith("sha256:") && claimed !== digest) {
      throw new JouleError(
        "JOULE_ERR_OCI_DIGEST_MISMATCH",
        `the manifest of ${reference} does not match the digest the registry gave for it (${claimed})`,
        { expected: claimed, actual: digest },
      );
    }
    return { bytes, digest, contentType: response.headers.get("content-type")?.split(";")[0]?.trim() };
  }

  /** Puts a manifest under a tag (or its digest); returns the digest the registry recorded. */
  async putManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const response = await this.#request("PUT", this.#url(`manifests/${reference}`), {
      headers: { "content-type": mediaType, "content-length": String(bytes.byteLength) },
      body: bytes,
    });
    if (response.status !== 201) return this.#fail(response, `putting manifest ${reference}`);
    await response.body?.cancel();
    const digest = sha256(bytes);
    const recorded = response.headers.get("docker-content-digest");
    if (recorded && recorded !== digest) {
      throw new JouleError(
        "JOULE_ERR_OCI_DIGEST_MISMATCH",
        `${this.registry} recorded the manifest as ${recorded}, not ${digest}`,
      );
    }
    return digest;
  }
}

/** A connection the address policy refused fails the fetch with the policy's coded error as its cause: pass it on as it is. */
function rethrowRefusal(error: unknown): void {
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof JouleError) throw cause;
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  return url.href;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readBounded(response: Response, max: number, what: string): Promise<string> {
  return new TextDecoder().decode(await readBytesBounded(response, max, what));
}

/**
 * Reads a body, refusing it as soon as it passes `max` bytes (a descriptor's
 * size or the manifest limit), so a hostile registry cannot fill memory.
 */
async function readBytesBounded(response: Response, max: number, what: string, digest?: string): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  const deadline = setTimeout(() => void reader.cancel(new Error("timeout")), BODY_TIMEOUT_MS);
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (error) {
        throw new JouleError(
          "JOULE_ERR_OCI_REGISTRY_UNREACHABLE",
          `the connection broke while reading ${what}: ${(error as Error).message}`,
        );
      }
      if (step.done) break;
      total += step.value.byteLength;
      if (total > max) {
        await reader.cancel();
        throw new JouleError(
          digest ? "JOULE_ERR_OCI_SIZE_MISMATCH" : "JOULE_ERR_OCI_TOO_LARGE",
          `${what} is longer than ${digest ? "its descriptor says" : "the limit"} (${max} bytes): refused`,
          digest ? { digest, expected: max } : { limit: max },
        );
      }
      chunks.push(step.value);
    }
  } finally {
    clearTimeout(deadline);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
