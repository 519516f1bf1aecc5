/**
 * A response the function streams (body.respond, body.write in
 * sdk/wit/world.wit) as fastify sends it: the head when the function gives
 * it, each chunk as it comes, the client's pace passed back to the function
 * (a chunk counts as taken once the socket drained). The figures known only
 * at the end (x-joule-fuel, -energy-uj, -duration-us, -cold-start) go in
 * HTTP trailers. A failure after the head ends the stream abnormally (the
 * connection closes without the final chunk), so a client never takes a
 * cut-off body for a whole one.
 */
import { once } from "node:events";
import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";
import type { InvocationOutcome } from "../invoke/invoker.ts";
import type { ResponseSink } from "../pool/worker-pool.ts";

export const FIGURE_TRAILERS = ["x-joule-duration-us", "x-joule-energy-uj", "x-joule-fuel", "x-joule-cold-start"];

/** Response headers the function may not set: the host frames the body itself. */
const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "trailer", "keep-alive"]);

export function setHeaders(reply: FastifyReply, headers: Array<[string, string]>, skip?: ReadonlySet<string>): void {
  const grouped = new Map<string, string[]>();
  for (const [header, value] of headers) {
    if (skip?.has(header)) continue;
    const values = grouped.get(header);
    if (values) values.push(value);
    else grouped.set(header, [value]);
  }
  for (const [header, values] of grouped) reply.header(header, header === "set-cookie" ? values : values.join(", "));
}

export class StreamedResponse implements ResponseSink {
  readonly #reply: FastifyReply;
  #body: PassThrough | undefined;
  readonly #outcome = Promise.withResolvers<InvocationOutcome>();

  constructor(reply: FastifyReply) {
    this.#reply = reply;
  }

  /** Whether the function started a streamed response. */
  get started(): boolean {
    return this.#body !== undefined;
  }

  head(status: number, headers: Array<[string, string]>): void {
    if (this.#body) return;
    const reply = this.#reply;
    reply.code(status);
    setHeaders(reply, headers, FRAMING);
    const figures = this.#outcome.promise;
    const value = (name: string) => async () => {
      const outcome = await figures;
      if (name === "x-joule-duration-us") return String(outcome.durationUs);
      if (name === "x-joule-energy-uj") return String(outcome.energyUj);
      if (name === "x-joule-fuel") return String(outcome.stats?.fuel ?? 0);
      return String(outcome.stats?.coldStart ?? false);
    };
    for (const name of FIGURE_TRAILERS) reply.trailer(name, value(name));
    this.#body = new PassThrough();
    void reply.send(this.#body);
  }

  async chunk(bytes: Uint8Array): Promise<void> {
    const body = this.#body;
    if (!body || body.destroyed) throw new Error("the response is closed");
    if (!body.write(bytes)) await once(body, "drain");
  }

  /** The invocation is over: the stream ends, normally or (after a failure) abnormally. */
  finish(outcome: InvocationOutcome): void {
    this.#outcome.resolve(outcome);
    const body = this.#body;
    if (!body) return;
    if (outcome.error) body.destroy(outcome.error);
    else body.end();
  }
}
