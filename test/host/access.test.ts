/**
 * Every route × every scope × limited or not: who is let through, who is
 * refused (401 without a key, 403 with the wrong scope or outside the key's
 * functions), and that the audit log holds a row for every refusal and for
 * every allowed change. The table is the host's own (routeTable): a route
 * added without a case here fails this test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCOPES, type Scope } from "../../host/src/auth/keys.ts";
import { routeTable } from "../../host/src/server/app.ts";
import { componentPath, startTestHost, type TestHost, uploadForm } from "../support/host.ts";
import { type Answer, encodeForm, requestFrom } from "../support/http.ts";

let t: TestHost;

/** Who calls: nobody, or a key holding one scope, for every function or limited to "mine". */
interface Caller {
  label: string;
  key?: string;
  id?: string;
  scope?: Scope;
  limited: boolean;
  address: string;
}
const callers: Caller[] = [];

/** What a request is about: one of two private functions, a public one, a principal, or nothing. */
type Target = "mine" | "theirs" | "open" | "self" | "other" | undefined;

interface Case {
  targets: Target[];
  path: (target: Target, caller: Caller) => string;
  body?: (target: Target, caller: Caller) => Promise<{ body: Uint8Array | string; contentType: string }>;
  /** Puts back what an allowed request changed. */
  restore?: (target: Target) => Promise<void>;
  /** For lists: what a key limited to "mine" must not see in the answer. */
  hides?: RegExp;
}

const json = (value: unknown) => async () => ({ body: JSON.stringify(value), contentType: "application/json" });
const upload = async () => {
  const { body, contentType } = await encodeForm(await uploadForm(componentPath("tiny"), {}));
  return { body, contentType };
};
const redeploy = async (target: Target) => {
  expect((await t.deploy(target as string, { component: componentPath("tiny") })).status).toBe(201);
};
let throwaway = "";
/** A secret of "mine" to delete, and one of "theirs" a limited key must not see in a list. */
const remakeSecret = async () => {
  t.host.secrets.set("made", "v", ["mine"]);
};

const CASES: Record<string, Case> = {
  "GET /healthz": { targets: [undefined], path: () => "/healthz" },
  "GET /readyz": { targets: [undefined], path: () => "/readyz" },
  "GET /metrics": { targets: [undefined], path: () => "/metrics", hides: /function="theirs"/ },
  "GET /v1/functions": { targets: [undefined], path: () => "/v1/functions", hides: /"theirs"/ },
  "GET /v1/functions/:name": { targets: ["mine", "theirs"], path: (fn) => `/v1/functions/${fn}` },
  "PUT /v1/functions/:name": { targets: ["mine", "theirs"], path: (fn) => `/v1/functions/${fn}`, body: upload },
  "DELETE /v1/functions/:name": {
    targets: ["mine", "theirs"],
    path: (fn) => `/v1/functions/${fn}`,
    restore: redeploy,
  },
  "GET /v1/energy": { targets: [undefined], path: () => "/v1/energy", hides: /"theirs"/ },
  "GET /v1/energy/functions/:name": { targets: ["mine", "theirs"], path: (fn) => `/v1/energy/functions/${fn}` },
  "PUT /v1/energy/functions/:name": {
    targets: ["mine", "theirs"],
    path: (fn) => `/v1/energy/functions/${fn}`,
    body: json({ joules: 100_000 }),
  },
  "DELETE /v1/energy/functions/:name": { targets: ["mine", "theirs"], path: (fn) => `/v1/energy/functions/${fn}` },
  "GET /v1/energy/principals/:id": { targets: ["self", "other"], path: (p, c) => `/v1/energy/principals/${who(p, c)}` },
  "PUT /v1/energy/principals/:id": {
    targets: ["self", "other"],
    path: (p, c) => `/v1/energy/principals/${who(p, c)}`,
    body: json({ joules: 1_000_000 }),
  },
  "DELETE /v1/energy/principals/:id": {
    targets: ["self", "other"],
    path: (p, c) => `/v1/energy/principals/${who(p, c)}`,
  },
  "GET /v1/audit": { targets: [undefined], path: () => "/v1/audit?limit=1000", hides: /"function":"theirs"/ },
  "GET /v1/keys": { targets: [undefined], path: () => "/v1/keys" },
  "POST /v1/keys": {
    targets: [undefined],
    path: () => "/v1/keys",
    body: json({ name: "made", scopes: ["keys:manage"], functions: ["mine"] }),
  },
  "DELETE /v1/keys/:id": { targets: [undefined], path: () => `/v1/keys/${throwaway}` },
  "GET /v1/secrets": { targets: [undefined], path: () => "/v1/secrets", hides: /"theirs"/ },
  "PUT /v1/secrets/:secret": {
    targets: [undefined],
    path: () => "/v1/secrets/made",
    body: json({ value: "v", functions: ["mine"] }),
  },
  "DELETE /v1/secrets/:secret": { targets: [undefined], path: () => "/v1/secrets/made", restore: remakeSecret },
  "GET /v2/": { targets: [undefined], path: () => "/v2/" },
  "GET /v2/functions/:name/manifests/:reference": {
    targets: ["mine", "theirs"],
    path: (fn) => `/v2/functions/${fn}/manifests/latest`,
  },
  "GET /v2/functions/:name/blobs/:digest": {
    targets: ["mine", "theirs"],
    path: (fn) => `/v2/functions/${fn}/blobs/${t.host.registry.get(fn as string)?.record.component.digest}`,
  },
  "* /fn/:name": { targets: ["mine", "theirs", "open"], path: (fn) => `/fn/${fn}` },
  "* /fn/:name/*": { targets: ["mine", "theirs", "open"], path: (fn) => `/fn/${fn}/some/path?q=1` },
};

/** The principal a principals route is about: the caller itself, or the bootstrap key. */
function who(target: Target, caller: Caller): string {
  return target === "self" ? (caller.id ?? "anonymous") : (t.key.split("_")[1] as string);
}

function caseOf(method: string, url: string): Case | undefined {
  return url.startsWith("/fn/") ? CASES[`* ${url}`] : CASES[`${method} ${url}`];
}

/** What the rules say a caller gets: through, or refused with 401/403. */
function expected(scope: Scope | "public", method: string, target: Target, caller: Caller): "allowed" | 401 | 403 {
  if (scope === "public") return "allowed";
  if (target === "open") return "allowed"; // a public function takes anyone
  if (!caller.key) return 401;
  if (caller.scope !== scope) return 403;
  if (!caller.limited) return "allowed";
  if (target === "theirs" || target === "other") return 403;
  if (target === "self" && method !== "GET") return 403;
  return "allowed";
}

beforeAll(async () => {
  t = await startTestHost();
  for (const [name, isPublic] of [
    ["mine", false],
    ["theirs", false],
    ["open", true],
  ] as const) {
    expect((await t.deploy(name, { component: componentPath("tiny"), public: isPublic })).status).toBe(201);
    expect((await t.fetch(`/fn/${name}/`)).status).toBe(200);
  }
  remakeSecret();
  t.host.secrets.set("theirs-secret", "v", ["theirs"]);
  // Something of "theirs" in the audit log that a limited reader must not see.
  expect((await t.fetch("/v1/energy/functions/theirs", { method: "DELETE" })).status).toBe(404);
  callers.push({ label: "anonymous", limited: false, address: "127.0.1.1" });
  SCOPES.forEach((scope, i) => {
    for (const limited of [false, true]) {
      const made = t.host.keys.create({
        name: `${scope}${limited ? " limited" : ""}`,
        scopes: [scope],
        ...(limited ? { functions: ["mine"] } : {}),
      });
      callers.push({
        label: `${scope}${limited ? " limited to mine" : ""}`,
        key: made.key,
        id: made.info.id,
        scope,
        limited,
        address: `127.0.${2 + i}.${limited ? 2 : 1}`,
      });
    }
  });
});
afterAll(() => t?.close());

async function send(caller: Caller, method: string, path: string, body?: Case["body"], target?: Target) {
  const headers: Record<string, string> = {};
  if (caller.key) headers.authorization = `Bearer ${caller.key}`;
  const payload = body ? await body(target, caller) : undefined;
  if (payload) headers["content-type"] = payload.contentType;
  return requestFrom(caller.address, new URL(path, t.url).href, { method, headers, body: payload?.body });
}

async function auditRows(answer: Answer): Promise<Array<{ allowed: boolean; principal: string }>> {
  const id = answer.headers["x-joule-request-id"] as string;
  const { records } = await (await t.fetch(`/v1/audit?requestId=${id}`)).json();
  return records;
}

describe("every route, every scope, limited or not", () => {
  it("has a case for every route the host serves", () => {
    const missing = routeTable(t.host.app)
      .filter((route) => route.method !== "HEAD")
      .filter((route) => !caseOf(route.method, route.url))
      .map((route) => `${route.method} ${route.url}`);
    expect(missing).toEqual([]);
    // Every method of an invocation route is one declaration.
    for (const url of ["/fn/:name", "/fn/:name/*"]) {
      const rules = new Set(
        routeTable(t.host.app)
          .filter((r) => r.url === url)
          .map((r) => r.access),
      );
      expect(rules.size).toBe(1);
    }
  });

  it("lets through exactly whom the rules allow, refuses the rest, and audits both", async () => {
    const routes = routeTable(t.host.app).filter(
      (route) => route.method !== "HEAD" && (!route.url.startsWith("/fn/") || ["GET", "POST"].includes(route.method)),
    );
    const failures: string[] = [];
    for (const route of routes) {
      const rule = caseOf(route.method, route.url) as Case;
      for (const caller of callers) {
        for (const target of rule.targets) {
          if (route.url === "/v1/keys/:id") {
            throwaway = t.host.keys.create({ name: "throwaway", scopes: ["keys:manage"], functions: ["mine"] }).info.id;
          }
          const answer = await send(caller, route.method, rule.path(target, caller), rule.body, target);
          const want = expected(route.access.scope, route.method, target, caller);
          const what = `${route.method} ${rule.path(target, caller)} as ${caller.label}: ${answer.status} ${answer.text.slice(0, 160)}`;
          const got = answer.status === 401 || answer.status === 403 ? answer.status : "allowed";
          if (got !== want) failures.push(`${what} (wanted ${want})`);
          if (answer.status >= 500) failures.push(`${what} (a server error)`);
          if (got === "allowed" && caller.limited && rule.hides?.test(answer.text))
            failures.push(`${what} (shows another function)`);
          // Refusals are always audited; allowed changes of the admin API too; reads and invocations are not.
          if (route.access.scope !== "public" && !route.url.startsWith("/fn/")) {
            const rows = await auditRows(answer);
            const change = route.method !== "GET";
            // An allowed change that then failed (404, 400) is recorded as not done.
            const wantRows = got !== "allowed" ? [false] : change ? [answer.status < 400] : [];
            if (JSON.stringify(rows.map((r) => r.allowed)) !== JSON.stringify(wantRows))
              failures.push(`${what} (audit rows ${JSON.stringify(rows)}, wanted allowed=${wantRows})`);
          } else if (got !== "allowed" && !(await auditRows(answer)).some((r) => !r.allowed)) {
            failures.push(`${what} (refusal not audited)`);
          }
          if (got === "allowed" && answer.status < 400) await rule.restore?.(target);
        }
      }
    }
    expect(failures.slice(0, 20)).toEqual([]);
  });
});
