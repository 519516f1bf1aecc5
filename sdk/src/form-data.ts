/**
 * `Request.formData()` and `Response.formData()` for multipart bodies.
 *
 * The engine's own multipart parser (StarlingMonkey, componentize-js 0.23)
 * corrupts files: a part's bytes come back as their decimal values joined
 * together (`[0, 1, 255]` → "01255"). Uploads must round-trip byte for
 * byte, so multipart bodies are parsed here, as the Fetch standard's
 * "multipart/form-data parser" says; every other content type
 * (`application/x-www-form-urlencoded`) still goes to the engine's, which
 * is right. Encoding a FormData into a body is the engine's too, and right.
 */

type BodyOwner = { headers: Headers; arrayBuffer(): Promise<ArrayBuffer> };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = encoder.encode("\r\n");
const HEADER_END = encoder.encode("\r\n\r\n");

function parseFailure(why: string): TypeError {
  return new TypeError(`could not parse the body as multipart/form-data: ${why}`);
}

/** Where `needle` starts in `haystack` at or after `from`; -1 when nowhere. */
function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0] as number;
  const last = haystack.length - needle.length;
  for (let at = haystack.indexOf(first, from); at !== -1 && at <= last; at = haystack.indexOf(first, at + 1)) {
    let i = 1;
    while (i < needle.length && haystack[at + i] === needle[i]) i++;
    if (i === needle.length) return at;
  }
  return -1;
}

/** The `boundary` parameter of a multipart/form-data content type; undefined for other types. */
export function multipartBoundary(contentType: string | null): string | undefined {
  if (!contentType || !/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return undefined;
  const match = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1]?.replace(/\\(.)/g, "$1") ?? match?.[2];
  if (!boundary || boundary.length > 70) throw parseFailure("the content type has no valid boundary");
  return boundary;
}

/** A quoted or bare parameter of a Content-Disposition header, with browsers' %22/%0D/%0A escapes undone. */
function dispositionParam(header: string, name: string): string | null {
  const extended = new RegExp(`;\\s*${name}\\*\\s*=\\s*([^']*)'[^']*'([^;]*)`, "i").exec(header);
  if (extended?.[2] !== undefined && /^utf-8$/i.test(extended[1] ?? "")) {
    try {
      return decodeURIComponent(extended[2].trim());
    } catch {}
  }
  const match = new RegExp(`;\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`, "i").exec(header);
  if (!match) return null;
  const value = match[1] !== undefined ? match[1].replace(/\\(["\\])/g, "$1") : (match[2] ?? "").trim();
  return value.replace(/%0A/gi, "\n").replace(/%0D/gi, "\r").replace(/%22/g, '"');
}

interface PartHeaders {
  name: string;
  filename: string | null;
  contentType: string | null;
}

function partHeaders(block: Uint8Array): PartHeaders {
  let disposition: string | undefined;
  let contentType: string | null = null;
  for (const line of decoder.decode(block).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const field = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (field === "content-disposition") disposition = value;
    else if (field === "content-type") contentType = value;
  }
  if (!disposition || !/^form-data\s*(;|$)/i.test(disposition))
    throw parseFailure("a part has no Content-Disposition: form-data");
  const name = dispositionParam(disposition, "name");
  if (name === null) throw parseFailure("a part has no name");
  return { name, filename: dispositionParam(disposition, "filename"), contentType };
}

/** The entries of a multipart/form-data body: text fields as strings, file parts as Files of their exact bytes. */
export function parseMultipart(body: Uint8Array, boundary: string): FormData {
  const delimiter = encoder.encode(`--${boundary}`);
  const form = new FormData();
  let at = indexOf(body, delimiter, 0);
  if (at === -1) throw parseFailure("the boundary does not occur in the body");
  for (;;) {
    at += delimiter.length;
    // "--" after a delimiter closes the body; anything after it is an epilogue.
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return form;
    if (body[at] !== CRLF[0] || body[at + 1] !== CRLF[1]) throw parseFailure("a delimiter is not followed by CRLF");
    const headersStart = at + 2;
    const headersEnd = indexOf(body, HEADER_END, headersStart - 2);
    if (headersEnd === -1) throw parseFailure("a part's headers do not end");
    const headers = partHeaders(body.subarray(headersStart, headersEnd));
    const contentStart = headersEnd + HEADER_END.length;
    const next = indexOf(body, new Uint8Array([...CRLF, ...delimiter]), contentStart - 2);
    if (next === -1) throw parseFailure("the last part is not closed by the boundary");
    const content = body.slice(Math.min(contentStart, next), next);
    if (headers.filename === null) form.append(headers.name, decoder.decode(content));
    else {
      const type = headers.contentType ?? "text/plain";
      form.append(headers.name, new File([content], headers.filename, { type }));
    }
    at = next + CRLF.length;
  }
}

/** Makes `formData()` of Request and Response parse multipart bodies byte-exact, leaving other types to the engine. */
export function installFormData(): void {
  for (const prototype of [Request.prototype, Response.prototype] as BodyOwner[]) {
    const engine = (prototype as unknown as { formData: (this: BodyOwner) => Promise<FormData> }).formData;
    Object.defineProperty(prototype, "formData", {
      configurable: true,
      writable: true,
      value: async function formData(this: BodyOwner): Promise<FormData> {
        const boundary = multipartBoundary(this.headers.get("content-type"));
        if (boundary === undefined) return engine.call(this);
        return parseMultipart(new Uint8Array(await this.arrayBuffer()), boundary);
      },
    });
  }
}
