/**
 * What `joule init` writes for each template: the function's module and
 * its test. Only what the SDK supports today: `scheduled` and `events` are
 * HTTP functions shaped for what is coming (schedules and events arrive in
 * a later issue), and say so in their code.
 */

export const TEMPLATES = ["http", "hono", "scheduled", "events"] as const;
export type Template = (typeof TEMPLATES)[number];

export interface TemplateFiles {
  index: string;
  test: string;
  /** Packages the template's code imports besides the SDK. */
  dependencies: string[];
  /** Said after scaffolding, when the template has a limit to know of. */
  note?: string;
}

const http: TemplateFiles = {
  dependencies: [],
  index: `import { defineFunction } from "@joule/sdk";

export default defineFunction({
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    ctx.log("request", request.method, url.pathname);
    if (request.method === "POST") {
      const body = await request.json();
      return Response.json({ received: body }, { status: 201 });
    }
    const name = url.searchParams.get("name") ?? "world";
    return Response.json({ greeting: \`\${env.GREETING ?? "Hello"}, \${name}!\`, path: url.pathname });
  },
});
`,
  test: `import assert from "node:assert/strict";
import { test } from "node:test";
import { createContext, createEnv } from "@joule/sdk/testing";
import fn from "./index.ts";

test("greets by name", async () => {
  const { ctx, logs } = createContext();
  const response = await fn.fetch(new Request("http://localhost/hi?name=you"), createEnv(), ctx);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { greeting: "Hello, you!", path: "/hi" });
  assert.deepEqual(logs, [{ level: "info", message: "request GET /hi" }]);
});

test("echoes a POSTed body", async () => {
  const { ctx } = createContext();
  const request = new Request("http://localhost/", { method: "POST", body: JSON.stringify({ a: 1 }) });
  const response = await fn.fetch(request, createEnv(), ctx);
  assert.equal(response.status, 201);
  assert.deepEqual(await response.json(), { received: { a: 1 } });
});
`,
};

const hono: TemplateFiles = {
  dependencies: ["hono"],
  index: `import { type Context, defineFunction, type Env } from "@joule/sdk";
import { Hono } from "hono";

// Joule's env and ctx reach Hono's handlers as c.env.env and c.env.ctx.
const app = new Hono<{ Bindings: { env: Env; ctx: Context } }>();

app.get("/", (c) => c.json({ greeting: \`\${c.env.env.GREETING ?? "Hello"} from Hono\` }));
app.get("/users/:id", (c) => {
  c.env.ctx.log("user", c.req.param("id"));
  return c.json({ id: c.req.param("id") });
});

export default defineFunction({
  fetch: (request, env, ctx) => app.fetch(request, { env, ctx }),
});
`,
  test: `import assert from "node:assert/strict";
import { test } from "node:test";
import { createContext, createEnv } from "@joule/sdk/testing";
import fn from "./index.ts";

test("routes with Hono", async () => {
  const { ctx, logs } = createContext();
  const response = await fn.fetch(new Request("http://localhost/users/42"), createEnv(), ctx);
  assert.deepEqual(await response.json(), { id: "42" });
  assert.deepEqual(logs, [{ level: "info", message: "user 42" }]);
  const home = await fn.fetch(new Request("http://localhost/"), createEnv(), ctx);
  assert.deepEqual(await home.json(), { greeting: "Hello from Hono" });
});
`,
};

const scheduled: TemplateFiles = {
  dependencies: [],
  note: "Joule has no schedules yet (they come in a later issue): this function runs its job on POST /run, for an outside cron or `joule invoke <name> /run -X POST` to call until then.",
  index: `import { type Context, defineFunction, type Env } from "@joule/sdk";

/**
 * The job. Joule has no schedules yet (they come in a later issue): until
 * then something outside calls POST /run on a timer (cron, a CI schedule,
 * \`joule invoke <name> /run -X POST\`); the job itself will not change.
 */
async function run(env: Env, ctx: Context): Promise<{ ranAt: string }> {
  const ranAt = new Date().toISOString();
  ctx.log("job ran at", ranAt);
  return { ranAt };
}

export default defineFunction({
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/run" && request.method === "POST") return Response.json(await run(env, ctx));
    return new Response("POST /run runs the job", { status: 404 });
  },
});
`,
  test: `import assert from "node:assert/strict";
import { test } from "node:test";
import { createContext, createEnv } from "@joule/sdk/testing";
import fn from "./index.ts";

test("runs the job on POST /run", async () => {
  const { ctx, logs } = createContext();
  const response = await fn.fetch(new Request("http://localhost/run", { method: "POST" }), createEnv(), ctx);
  assert.equal(response.status, 200);
  const { ranAt } = await response.json();
  assert.ok(!Number.isNaN(Date.parse(ranAt)));
  assert.equal(logs.length, 1);
});
`,
};

const events: TemplateFiles = {
  dependencies: [],
  note: "Joule does not deliver events yet (they come in a later issue): this function takes CloudEvents 1.0 POSTed to it (structured JSON or binary mode), so any producer can send them until then.",
  index: `import { defineFunction } from "@joule/sdk";

/** A CloudEvents 1.0 event: https://cloudevents.io */
interface CloudEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  data?: unknown;
}

/**
 * Joule does not deliver events yet (they come in a later issue, in
 * CloudEvents 1.0): until then any producer POSTs events here, in
 * structured mode (content-type application/cloudevents+json) or binary
 * mode (ce-* headers, the data as the body).
 */
async function readEvent(request: Request): Promise<CloudEvent | undefined> {
  if (request.headers.get("content-type")?.startsWith("application/cloudevents+json")) {
    return (await request.json()) as CloudEvent;
  }
  const id = request.headers.get("ce-id");
  const source = request.headers.get("ce-source");
  const type = request.headers.get("ce-type");
  if (!id || !source || !type) return undefined;
  const text = await request.text();
  return { specversion: request.headers.get("ce-specversion") ?? "1.0", id, source, type, data: text ? JSON.parse(text) : undefined };
}

export default defineFunction({
  async fetch(request, _env, ctx) {
    if (request.method !== "POST") return new Response("POST a CloudEvent", { status: 405 });
    const event = await readEvent(request);
    if (!event) return new Response("not a CloudEvent", { status: 400 });
    ctx.log("event", event.type, event.id, "from", event.source);
    return new Response(null, { status: 202 });
  },
});
`,
  test: `import assert from "node:assert/strict";
import { test } from "node:test";
import { createContext, createEnv } from "@joule/sdk/testing";
import fn from "./index.ts";

test("accepts a structured CloudEvent", async () => {
  const { ctx, logs } = createContext();
  const event = { specversion: "1.0", id: "1", source: "/orders", type: "order.created", data: { n: 1 } };
  const request = new Request("http://localhost/", {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify(event),
  });
  const response = await fn.fetch(request, createEnv(), ctx);
  assert.equal(response.status, 202);
  assert.deepEqual(logs, [{ level: "info", message: "event order.created 1 from /orders" }]);
});

test("refuses what is not an event", async () => {
  const { ctx } = createContext();
  const response = await fn.fetch(new Request("http://localhost/", { method: "POST", body: "{}" }), createEnv(), ctx);
  assert.equal(response.status, 400);
});
`,
};

export const TEMPLATE_FILES: Record<Template, TemplateFiles> = { http, hono, scheduled, events };
