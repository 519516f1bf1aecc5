/**
 * A small JSON API with routing: method + path patterns, JSON bodies,
 * validation errors as 400s, and Web APIs the host provides (clock, random).
 */
import { defineFunction } from "@joule/sdk";

type Params = Record<string, string>;
type Route = {
  method: string;
  pattern: RegExp;
  handle: (request: Request, params: Params) => Response | Promise<Response>;
};

const error = (status: number, message: string) => Response.json({ error: message }, { status });

function route(method: string, path: string, handle: Route["handle"]): Route {
  const pattern = new RegExp(`^${path.replace(/:(\w+)/g, "(?<$1>[^/]+)")}/?$`);
  return { method, pattern, handle };
}

const routes: Route[] = [
  route("GET", "/", () =>
    Response.json({ routes: ["GET /time", "GET /uuid", "POST /sum", "GET /greet/:name", "POST /words"] }),
  ),
  route("GET", "/time", () => Response.json({ now: new Date().toISOString(), epochMs: Date.now() })),
  route("GET", "/uuid", () => Response.json({ uuid: crypto.randomUUID() })),
  route("GET", "/greet/:name", (_request, params) => Response.json({ hello: decodeURIComponent(params.name ?? "") })),
  route("POST", "/sum", async (request) => {
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return error(400, "body must be JSON");
    }
    const numbers = (body as { numbers?: unknown })?.numbers;
    if (!Array.isArray(numbers) || !numbers.every((n) => typeof n === "number")) {
      return error(400, 'body must be {"numbers": number[]}');
    }
    return Response.json({ count: numbers.length, sum: numbers.reduce((a, b) => a + b, 0) });
  }),
  route("POST", "/words", async (request) => {
    const text = await request.text();
    const words = text.split(/\s+/).filter(Boolean);
    return Response.json({ words: words.length, characters: text.length });
  }),
];

export default defineFunction({
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const matching = routes.filter((r) => r.pattern.test(pathname));
    if (matching.length === 0) return error(404, `no route for ${pathname}`);
    const found = matching.find((r) => r.method === request.method);
    if (!found) {
      const allow = matching.map((r) => r.method).join(", ");
      return new Response(JSON.stringify({ error: `${request.method} not allowed` }), {
        status: 405,
        headers: { allow, "content-type": "application/json" },
      });
    }
    const params = (pathname.match(found.pattern)?.groups ?? {}) as Params;
    const response = await found.handle(request, params);
    response.headers.set("x-api-version", env.API_VERSION ?? "0");
    return response;
  },
});
