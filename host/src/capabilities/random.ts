/**
 * wasi:random/random, always granted: the host's CSPRNG, so every instance
 * draws its own sequence (a guest without it repeats one sequence forever).
 */
import { getRandomValues } from "node:crypto";

/** One call may ask for at most this much; more is a guest bug, not a need. */
const MAX_BYTES = 1024 * 1024;

export function randomImports() {
  return {
    "wasi:random/random": {
      getRandomBytes(len: bigint): Uint8Array {
        const n = Number(len);
        if (n > MAX_BYTES) throw new RangeError(`get-random-bytes: ${n} bytes asked, at most ${MAX_BYTES} allowed`);
        const bytes = new Uint8Array(n);
        for (let offset = 0; offset < n; offset += 65536) getRandomValues(bytes.subarray(offset, offset + 65536));
        return bytes;
      },
      getRandomU64(): bigint {
        return getRandomValues(new BigUint64Array(1))[0] as bigint;
      },
    },
  };
}
