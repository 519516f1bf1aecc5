/**
 * A CPU-bound JS function for bench/fuel.ts and the fuel tests. `?work=`
 * chooses the workload, `?n=` its size; without `work` it runs the sieve and
 * JSON round trips the overhead bench has always measured. The others are
 * the workloads of issue 15's table (each `n` iterations) and call-heavy
 * code as compiled TypeScript runs it: recursion and small functions called
 * in a loop.
 */
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

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

interface Point {
  x: number;
  y: number;
}
const add = (a: Point, b: Point): Point => ({ x: a.x + b.x, y: a.y + b.y });
const scale = (p: Point, k: number): Point => ({ x: p.x * k, y: p.y * k });
const length2 = (p: Point): number => p.x * p.x + p.y * p.y;

const WORKLOADS: Record<string, (n: number) => unknown | Promise<unknown>> = {
  loop(n) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc = (acc + i * i) % 65521;
    return acc;
  },
  json(n) {
    const value = { id: 7, name: "joule", tags: ["a", "b", "c"], nested: { ok: true, ratio: 0.5 } };
    let length = 0;
    for (let i = 0; i < n; i++) length += JSON.stringify(value).length;
    return length;
  },
  strings(n) {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(97 + (i % 26));
    return s.length;
  },
  async digest(n) {
    const data = new Uint8Array(1024).fill(7);
    let last = 0;
    for (let i = 0; i < n; i++) last = new Uint8Array(await crypto.subtle.digest("SHA-256", data))[0] as number;
    return last;
  },
  clock(n) {
    let t = 0;
    for (let i = 0; i < n; i++) t = Date.now();
    return t > 0;
  },
  fib: (n) => fib(n),
  calls(n) {
    let p: Point = { x: 0, y: 0 };
    let sum = 0;
    for (let i = 0; i < n; i++) {
      p = add(scale(p, 0.5), { x: i, y: 1 });
      sum += length2(p) % 7;
    }
    return sum;
  },
};

export default defineFunction({
  async fetch(request) {
    const params = new URL(request.url).searchParams;
    const work = params.get("work");
    const n = Number(params.get("n") ?? "200000");
    const run = work ? WORKLOADS[work] : undefined;
    if (work && !run) return new Response(`no workload ${work}`, { status: 404 });
    if (run) return Response.json({ work, n, result: await run(n) });
    return Response.json({ primes: sieve(n), json: json(n / 2000) });
  },
});
