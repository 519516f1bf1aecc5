/**
 * Echoes the request body back byte for byte (binary included), with its
 * content type, and reports what it received in headers.
 */
import { defineFunction } from "@joule/sdk";

async function sha256Hex(bytes: ArrayBuffer): Promise<string | undefined> {
  if (!crypto.subtle) return undefined;
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export default defineFunction({
  async fetch(request) {
    const body = await request.arrayBuffer();
    const headers = new Headers({
      "content-type": request.headers.get("content-type") ?? "application/octet-stream",
      "x-echo-method": request.method,
      "x-echo-bytes": String(body.byteLength),
    });
    const url = new URL(request.url);
    if (url.searchParams.has("digest")) headers.set("x-echo-sha256", (await sha256Hex(body)) ?? "unavailable");
    return new Response(body, { status: 200, headers });
  },
});
