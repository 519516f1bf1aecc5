/** A CPU-bound JS function for bench/fuel.ts: a prime sieve and JSON round trips. */
import { defineFunction } from "@joule/sdk";

function sieve(limit: number): number {
  const composite = new Uint8Array(limit + 1);
  let count = 0;
  for (let i = 2; i <= limit; i++) {
    if (composite[i]) continue;
    count++;
    for (let j = i * i; j <= limit; j += i) composite[j] = 1;
  }
  return count;
}

function json(rounds: number): number {
  let value: unknown = {
    items: Array.from({ length: 50 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ["a", "b"] })),
  };
  for (let i = 0; i < rounds; i++) value = JSON.parse(JSON.stringify(value));
  return (value as { items: unknown[] }).items.length;
}

export default defineFunction({
  fetch(request) {
    const n = Number(new URL(request.url).searchParams.get("n") ?? "200000");
    return Response.json({ primes: sieve(n), json: json(n / 2000) });
  },
});
