/**
 * The WIT world a function is built against: sdk/wit/world.wit's `function`
 * world, cut down to the capabilities its manifest declares, so the
 * component imports only those and deploy can tell what it uses.
 */
import type { Manifest } from "../manifest.ts";

export const WIT_VERSION = "0.2.0";

/**
 * Capabilities by the joule.json key that grants them, and the Joule
 * interface each is imported as; outboundHttp has none: the engine's own
 * fetch uses wasi:http, which every JS function imports, and the host
 * checks the grant on every request.
 */
const CAPABILITY_INTERFACES = [
  { key: "kv", iface: "kv" },
  { key: "outboundHttp", iface: undefined },
  { key: "files", iface: "files" },
] as const;

/** The capabilities a manifest declares (a non-empty grant). */
export function grantedCapabilities(manifest: Manifest) {
  return CAPABILITY_INTERFACES.filter(({ key }) => {
    const grant = manifest.capabilities[key];
    return Array.isArray(grant) ? grant.length > 0 : Object.keys(grant).length > 0;
  });
}

/** The Joule interfaces the function's world imports: those of its granted capabilities that have one. */
export function grantedInterfaces(manifest: Manifest): Array<{ key: string; iface: string }> {
  return grantedCapabilities(manifest).flatMap(({ key, iface }) => (iface ? [{ key, iface }] : []));
}

/** sdk/wit/world.wit with its `function` world importing only what `manifest` declares. */
export function functionWorld(worldWit: string, manifest: Manifest): string {
  const start = worldWit.indexOf("world function {");
  if (start < 0) throw new Error("sdk/wit/world.wit has no `world function`");
  const end = worldWit.indexOf("}", start);
  const imports = grantedInterfaces(manifest).map(({ iface }) => `  import ${iface};\n`);
  const world = `world function {\n  import host;\n  import body;\n${imports.join("")}  export handler;\n  export lifecycle;\n  export warm-up;\n}`;
  return `${worldWit.slice(0, start)}${world}${worldWit.slice(end + 1)}`;
}
