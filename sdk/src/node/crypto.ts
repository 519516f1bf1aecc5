// node:crypto inside a function: the Web Crypto the engine has, under Node's names. `joule build`
// resolves `node:crypto` (and `crypto`) here; what Node has beyond this (createHash, randomBytes's
// Buffer...) is a build error naming the package that imports it. Runs in the guest: no Node.
export const webcrypto = globalThis.crypto;
export const subtle = globalThis.crypto.subtle;
export const getRandomValues = <T extends ArrayBufferView<ArrayBuffer>>(array: T): T =>
  globalThis.crypto.getRandomValues(array);
export const randomUUID = (): string => globalThis.crypto.randomUUID();
/** Fills `buffer` (or the part at offset/size) with random bytes, as Node's does. */
export function randomFillSync<T extends ArrayBufferView<ArrayBuffer>>(buffer: T, offset = 0, size?: number): T {
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  globalThis.crypto.getRandomValues(bytes.subarray(offset, size === undefined ? undefined : offset + size));
  return buffer;
}
export default { webcrypto, subtle, getRandomValues, randomUUID, randomFillSync };
