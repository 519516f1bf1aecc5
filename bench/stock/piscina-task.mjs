// The same handler as plain JS in a piscina worker: fastify + piscina with no guest, Joule's architecture floor.
import { hello, tiny } from "./hello-handler.mjs";

export default function answer({ which, url }) {
  return which === "tiny" ? tiny() : hello(url);
}
