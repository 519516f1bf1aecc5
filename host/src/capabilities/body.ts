/**
 * joule:function/body (sdk/wit/world.wit, 0.2.0): the current invocation's
 * bodies, streamed. `read` and `write` are suspending imports (JSPI): a
 * guest waiting for request bytes, or for a slow client to take response
 * bytes, suspends its own stack and the worker runs other invocations.
 * Only an invocation's own body is reachable, and only while it runs.
 */
import type { IoScope } from "./io.ts";

/** One invocation's bodies as the worker keeps them (worker/invocation-body.ts). */
export interface GuestBody {
  read(max: number): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  respond(status: number, headers: Array<[string, string]>): void;
  write(bytes: Uint8Array): void | Promise<void>;
}

/** Which invocation's bodies the instance reaches now (set when an invocation begins). */
export interface BodySlot {
  body: GuestBody | undefined;
}

const OUTSIDE = "the request and response bodies are reachable only while handle() runs";

export function bodyImports(slot: BodySlot, scope: IoScope) {
  const body = () => {
    if (!slot.body) throw OUTSIDE;
    return slot.body;
  };
  return {
    "joule:function/body": {
      read(max: number): Uint8Array | undefined | Promise<Uint8Array | undefined> {
        const next = body().read(Math.max(1, max));
        return next instanceof Promise ? scope.guard(next) : next;
      },
      respond(status: number, headers: Array<[string, string]>): void {
        body().respond(status, headers);
      },
      write(bytes: Uint8Array): void | Promise<void> {
        const done = body().write(bytes);
        return done instanceof Promise ? scope.guard(done) : done;
      },
    },
  };
}
