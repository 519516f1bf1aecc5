/**
 * An invocation's request body, taken from the client as the function needs
 * it. A body of known length up to WHOLE_BYTES is read before the function
 * starts and goes to it in one piece; any other (larger, or chunked with no
 * length) is streamed: the function starts at once and reads it as it
 * arrives (body.read in sdk/wit/world.wit). Either way no more than the
 * function's limit is taken, and a body that says it is larger is refused
 * before anything runs.
 */
import type { Readable } from "node:stream";
import { JouleError } from "../errors.ts";

/** Bodies up to this size, with a known length, are read whole before the function starts. */
export const WHOLE_BYTES = 64 * 1024;

const EMPTY = new Uint8Array(0);

export interface TakenBody {
  /** What goes with the task: the whole body, or nothing yet when streamed. */
  first: Uint8Array;
  streamed: boolean;
  /** The rest, as it arrives, when streamed; throws JOULE_ERR_BODY_TOO_LARGE past the limit. */
  rest?: AsyncIterable<Uint8Array>;
}

function tooLarge(size: number | undefined, limit: number, fn: string): JouleError {
  const said = size === undefined ? "the body is over the limit" : `the body is ${size} bytes`;
  return new JouleError("JOULE_ERR_BODY_TOO_LARGE", `${said}; ${fn} accepts at most ${limit}`, { limit });
}

async function* bounded(stream: Readable, limit: number, fn: string, onOver: () => void): AsyncIterable<Uint8Array> {
  let total = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    total += bytes.byteLength;
    if (total > limit) {
      // Not destroyed here: the 413 must still reach the client, on a connection closed after it.
      onOver();
      stream.pause();
      throw tooLarge(undefined, limit, fn);
    }
    yield new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/** `stream`: the request as the content parser left it (undefined without a body). */
export async function takeBody(
  stream: Readable | undefined,
  declared: string | undefined,
  limit: number,
  fn: string,
  onOver: () => void,
): Promise<TakenBody> {
  if (!stream) return { first: EMPTY, streamed: false };
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && length > limit) {
    stream.resume(); // drained, not kept: the answer says why
    throw tooLarge(length, limit, fn);
  }
  if (length !== undefined && length <= WHOLE_BYTES) {
    const chunks: Buffer[] = [];
    for await (const part of bounded(stream, limit, fn, onOver)) chunks.push(Buffer.from(part));
    const whole = Buffer.concat(chunks);
    return { first: new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength), streamed: false };
  }
  return { first: EMPTY, streamed: true, rest: bounded(stream, limit, fn, onOver) };
}
