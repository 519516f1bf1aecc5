/**
 * How one secret value is kept at rest: AES-256-GCM under the host's
 * secrets key, as one versioned blob
 *
 *   version (1 byte, 0x01) | nonce (12 bytes) | tag (16 bytes) | ciphertext
 *
 * The nonce is fresh and random for every write (a key seals far fewer than
 * the 2^32 values random 96-bit nonces are safe for). The associated data is
 * the version byte followed by the secret's name in UTF-8, so a sealed value
 * copied under another name, or read as another version, fails to open
 * instead of serving the wrong secret; so does a value sealed under another
 * key. Opening never returns unauthenticated bytes.
 */
import { createCipheriv, createDecipheriv, hkdfSync, type KeyObject, randomBytes } from "node:crypto";

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES + TAG_BYTES;

function associatedData(version: number, name: string): Buffer {
  return Buffer.concat([Buffer.of(version), Buffer.from(name, "utf8")]);
}

export function seal(key: KeyObject, name: string, value: string): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(VERSION, name));
  const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), ciphertext]);
}

/** The value sealed under `name`, or undefined when the blob does not authenticate (never garbage). */
export function unseal(key: KeyObject, name: string, blob: Uint8Array): string | undefined {
  if (blob.byteLength < HEADER_BYTES || blob[0] !== VERSION) return undefined;
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(1, 1 + NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(associatedData(VERSION, name));
  decipher.setAuthTag(bytes.subarray(1 + NONCE_BYTES, HEADER_BYTES));
  try {
    const plain = Buffer.concat([decipher.update(bytes.subarray(HEADER_BYTES)), decipher.final()]);
    return plain.toString("utf8");
  } catch {
    return undefined; // final() throws when the tag does not match
  }
}

/**
 * A short public name for a key, so the store can tell "not the key these
 * were sealed with" from a damaged value, and an operator can match a key
 * file to a store. Derived with HKDF under its own label, so it says nothing
 * about the key and is never a value the key encrypts with.
 */
export function keyId(key: KeyObject): string {
  return Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), "joule secrets key id", 8)).toString("hex");
}
