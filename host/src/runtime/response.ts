/**
 * Guest output is outside input: a function's response is checked before it
 * reaches the client, and any message that leaves the host is cleaned of
 * host paths.
 */
import { JouleError } from "../errors.ts";
import type { GuestResponse } from "./types.ts";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 field-value characters, as Node accepts them (latin-1, no controls but tab). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
export const MAX_RESPONSE_HEADERS = 256;
export const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;

/** Headers the host owns: the function cannot set them. */
const HOST_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"]);

export function checkResponse(response: GuestResponse, maxBytes: number): GuestResponse {
  const { status, headers, body } = response;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new JouleError("JOULE_ERR_EXECUTION_BAD_RESPONSE", `status ${status} is not between 200 and 599`);
  }
  if (body.byteLength > maxBytes) {
    throw new JouleError(
      "JOULE_ERR_LIMIT_RESPONSE_TOO_LARGE",
      `response body is ${body.byteLength} bytes, the limit is ${maxBytes}`,
    );
  }
  if (headers.length > MAX_RESPONSE_HEADERS) {
    throw new JouleError(
      "JOULE_ERR_EXECUTION_BAD_RESPONSE",
      `${headers.length} response headers; at most ${MAX_RESPONSE_HEADERS} are allowed`,
    );
  }
  let headerBytes = 0;
  const kept: Array<[string, string]> = [];
  for (const [name, value] of headers) {
    headerBytes += name.length + value.length + 4;
    if (headerBytes > MAX_RESPONSE_HEADER_BYTES) {
      throw new JouleError(
        "JOULE_ERR_EXECUTION_BAD_RESPONSE",
        `response headers are over ${MAX_RESPONSE_HEADER_BYTES} bytes in all`,
      );
    }
    if (!TOKEN.test(name)) {
      throw new JouleError("JOULE_ERR_EXECUTION_BAD_RESPONSE", `header name ${JSON.stringify(name)} is invalid`);
    }
    if (!FIELD_VALUE.test(value)) {
      throw new JouleError(
        "JOULE_ERR_EXECUTION_BAD_RESPONSE",
        `header ${name} has a character not allowed in a header value (a line break, a control character, or one beyond latin-1)`,
      );
    }
    const lower = name.toLowerCase();
    if (!HOST_HEADERS.has(lower) && !lower.startsWith("x-joule-")) kept.push([lower, value]);
  }
  return { status, headers: kept, body };
}

const PATHS = /(?:file:\/\/)?(?:\/[\w.@+-]+){2,}(?::\d+)*/g;
const MAX_MESSAGE = 2048;

/** Removes file paths (and so the host's layout) from a message, and bounds its length. */
export function sanitize(message: string): string {
  const firstLines = message.split("\n").slice(0, 10).join("\n");
  const cleaned = firstLines.replace(PATHS, "<path>");
  return cleaned.length > MAX_MESSAGE ? `${cleaned.slice(0, MAX_MESSAGE)}…` : cleaned;
}
