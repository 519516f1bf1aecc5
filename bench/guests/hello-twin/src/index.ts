/**
 * The hello guest's answer from a different function: other code and a
 * heap of its own (a table built at build time), so that its memory image
 * shares only part of its pages with hello's. The bench alternates cold
 * starts between the two to measure a cold start after another function.
 */
import { defineFunction } from "@joule/sdk";

const UNITS = new Map(Array.from({ length: 2000 }, (_, i) => [`unit-${i}`, i * 1.5]));

export default defineFunction({
  async fetch(request, env) {
    const url = new URL(request.url);
    const name = url.searchParams.get("name") ?? "world";
    const unit = UNITS.get(url.searchParams.get("unit") ?? "") ?? 0;
    return Response.json({ greeting: `${env.GREETING ?? "Hello"}, ${name}!`, path: url.pathname, unit });
  },
});
