import { createSecretKey, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { keyId, seal, unseal } from "../../host/src/capabilities/secrets-seal.ts";

const key = createSecretKey(randomBytes(32));
const other = createSecretKey(randomBytes(32));

describe("a sealed secret value", () => {
  it("is version 1, a 12-byte nonce, a 16-byte tag and the ciphertext, with a fresh nonce per write", () => {
    const a = Buffer.from(seal(key, "token", "hunter2"));
    const b = Buffer.from(seal(key, "token", "hunter2"));
    expect(a[0]).toBe(1);
    expect(a.byteLength).toBe(1 + 12 + 16 + "hunter2".length);
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false);
    expect(a.includes("hunter2")).toBe(false);
    expect(unseal(key, "token", a)).toBe("hunter2");
    expect(unseal(key, "token", seal(key, "token", ""))).toBe("");
  });

  it("opens only under its own name, its own key, its own version, and unaltered", () => {
    const sealed = Buffer.from(seal(key, "token", "hunter2"));
    expect(unseal(key, "other-name", sealed)).toBeUndefined();
    expect(unseal(other, "token", sealed)).toBeUndefined();
    for (const at of [0, 1, 13, sealed.byteLength - 1]) {
      const altered = Buffer.from(sealed);
      altered[at] = (altered[at] ?? 0) ^ 1;
      expect(unseal(key, "token", altered), `byte ${at}`).toBeUndefined();
    }
    expect(unseal(key, "token", sealed.subarray(0, 28))).toBeUndefined();
  });

  it("names its key by an id that differs between keys and says nothing of the key", () => {
    expect(keyId(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyId(key)).toBe(keyId(key));
    expect(keyId(key)).not.toBe(keyId(other));
  });
});
