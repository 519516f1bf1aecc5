/**
 * Digests, and the checks every byte from outside passes before it is used:
 * the length a descriptor promised, then the sha256 it named. Only sha256 is
 * accepted (the algorithm every registry uses; a `sha512:` reference is refused
 * by the reference parser).
 */
import { createHash } from "node:crypto";
import { JouleError } from "../errors.ts";

export const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function digestHex(digest: string): string {
  if (!DIGEST.test(digest)) throw new JouleError("JOULE_ERR_OCI_MANIFEST_INVALID", `not a sha256 digest: ${digest}`);
  return digest.slice("sha256:".length);
}

/** Refuses bytes whose length or digest is not what `expected` says, naming `what` they were. */
export function verifyBlob(
  bytes: Uint8Array,
  expected: { digest: string; size?: number | undefined },
  what: string,
): void {
  if (expected.size !== undefined && bytes.byteLength !== expected.size) {
    throw new JouleError(
      "JOULE_ERR_OCI_SIZE_MISMATCH",
      `${what} is ${bytes.byteLength} bytes, its descriptor says ${expected.size}: refused`,
      { digest: expected.digest, expected: expected.size, actual: bytes.byteLength },
    );
  }
  const actual = sha256(bytes);
  if (actual !== expected.digest) {
    throw new JouleError("JOULE_ERR_OCI_DIGEST_MISMATCH", `${what} does not match its digest ${expected.digest}`, {
      expected: expected.digest,
      actual,
    });
  }
}
