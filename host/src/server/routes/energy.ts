/**
 * `/v1/energy`: the energy model in force, and per function and per
 * principal budgets: what they allow, what was used, what remains, when
 * they refill. PUT sets a budget, DELETE removes it (unlimited).
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { budgetInput, type EnergyLedger, type Scope } from "../../energy/ledger.ts";
import type { EnergyModel } from "../../energy/model.ts";
import { JouleError } from "../../errors.ts";
import { energyBudgetSchema } from "../../manifest.ts";
import { parseRequest } from "../errors.ts";

export interface EnergyDeps {
  ledger: EnergyLedger;
  model: EnergyModel;
}

const SCOPES: Record<string, Scope> = { functions: "function", principals: "principal" };
const idSchema = z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, "1-128 of letters, digits and . _ : @ -");

function scopeOf(plural: string): Scope {
  const scope = SCOPES[plural];
  if (!scope)
    throw new JouleError("JOULE_ERR_ROUTE_NOT_FOUND", `no energy scope "${plural}"; use functions or principals`);
  return scope;
}

function checkId(id: string): string {
  const parsed = idSchema.safeParse(id);
  if (!parsed.success) {
    throw new JouleError("JOULE_ERR_REQUEST_INVALID", `"${id}" is not a valid id: ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}

export async function energyRoutes(app: FastifyInstance, { ledger, model }: EnergyDeps): Promise<void> {
  const modelView = () => ({
    joulesPerFuel: model.joulesPerFuel,
    source: model.source,
    ...(model.calibration ? { calibration: model.calibration } : {}),
  });

  app.get("/v1/energy", async () => {
    const all = ledger.list();
    return {
      model: modelView(),
      functions: all.filter((s) => s.scope === "function"),
      principals: all.filter((s) => s.scope === "principal"),
    };
  });

  app.get<{ Params: { scope: string; id: string } }>("/v1/energy/:scope/:id", async (request) =>
    ledger.status(scopeOf(request.params.scope), checkId(request.params.id)),
  );

  app.put<{ Params: { scope: string; id: string } }>("/v1/energy/:scope/:id", async (request) => {
    const scope = scopeOf(request.params.scope);
    const id = checkId(request.params.id);
    const budget = parseRequest(energyBudgetSchema, request.body, "the budget");
    return ledger.setBudget(scope, id, budgetInput(budget));
  });

  app.delete<{ Params: { scope: string; id: string } }>("/v1/energy/:scope/:id", async (request, reply) => {
    if (!ledger.removeBudget(scopeOf(request.params.scope), checkId(request.params.id))) {
      throw new JouleError("JOULE_ERR_ENERGY_NO_BUDGET", `no budget is set for ${request.params.id}`);
    }
    return reply.code(204).send();
  });
}
