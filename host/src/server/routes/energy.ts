/**
 * `/v1/energy`: the energy model in force, and per function and per
 * principal budgets: what they allow, what was used, what remains, when
 * they refill. PUT sets a budget, DELETE removes it (unlimited). A key
 * limited to some functions sees and sets only theirs, and reads its own
 * principal's budget (access.ts).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { budgetInput, type EnergyLedger, type Scope } from "../../energy/ledger.ts";
import type { EnergyModel } from "../../energy/model.ts";
import { JouleError } from "../../errors.ts";
import { energyBudgetSchema } from "../../manifest.ts";
import { access, functionParam, principalOf, type Resource, visible } from "../access.ts";
import { parseRequest } from "../errors.ts";

export interface EnergyDeps {
  ledger: EnergyLedger;
  model: EnergyModel;
}

/** A principal's id: an API key's id, "operator", "anonymous" or "host". */
const principalIdSchema = z.string().regex(/^[A-Za-z0-9._:@-]{1,128}$/, "1-128 of letters, digits and . _ : @ -");

function principalParam(request: FastifyRequest): Resource {
  const { id } = request.params as { id: string };
  const parsed = principalIdSchema.safeParse(id);
  if (!parsed.success) {
    throw new JouleError("JOULE_ERR_REQUEST_INVALID", `"${id}" is not a valid id: ${parsed.error.issues[0]?.message}`);
  }
  return { kind: "principal", id: parsed.data };
}

export async function energyRoutes(app: FastifyInstance, { ledger, model }: EnergyDeps): Promise<void> {
  const modelView = () => ({
    joulesPerFuel: model.joulesPerFuel,
    source: model.source,
    ...(model.calibration ? { calibration: model.calibration } : {}),
  });

  app.get("/v1/energy", access("energy:manage"), async (request) => {
    const caller = principalOf(request);
    const all = ledger.list();
    return {
      model: modelView(),
      functions: all.filter((s) => s.scope === "function" && visible(caller, s.id)),
      principals: all.filter((s) => s.scope === "principal" && (!caller.functions || s.id === caller.id)),
    };
  });

  // One set of routes per kind of budget, each naming what it concerns.
  const kinds: Array<[string, Scope, (request: FastifyRequest) => Resource, string]> = [
    ["functions", "function", functionParam, "name"],
    ["principals", "principal", principalParam, "id"],
  ];
  for (const [plural, scope, resource, param] of kinds) {
    const route = `/v1/energy/${plural}/:${param}`;
    const options = access("energy:manage", { resource });
    const idOf = (request: FastifyRequest) => {
      const target = resource(request);
      return target.kind === "function" ? target.name : target.id;
    };

    app.get(route, options, async (request) => ledger.status(scope, idOf(request)));

    app.put(route, options, async (request) => {
      const budget = parseRequest(energyBudgetSchema, request.body, "the budget");
      return ledger.setBudget(scope, idOf(request), budgetInput(budget));
    });

    app.delete(route, options, async (request, reply) => {
      const id = idOf(request);
      if (!ledger.removeBudget(scope, id)) {
        throw new JouleError("JOULE_ERR_ENERGY_NO_BUDGET", `no budget is set for ${id}`);
      }
      return reply.code(204).send();
    });
  }
}
