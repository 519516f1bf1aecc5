/**
 * Which network addresses the host connects to on someone else's say-so:
 * the one address policy of the guests' outbound HTTP
 * (capabilities/outbound-http.ts) and of the registries a deploy pulls
 * from (oci/registry-address-policy.ts). A public address is reachable; an
 * address in a special range (loopback, private, link-local, CGNAT,
 * unique-local, multicast, unspecified, reserved, cloud metadata) only when
 * the caller's exemption says so for that destination: outbound HTTP
 * exempts an address the grant names itself (`http://10.0.0.5:8080`), a
 * deploy exempts a registry the operator lists (JOULE_PRIVATE_REGISTRIES)
 * but never a metadata address. Every address a name resolves to must pass,
 * so a name cannot mix a public address with an internal one, and the
 * connection then goes to the address that was checked (no second lookup,
 * so DNS rebinding between check and connect reaches nothing new).
 *
 * Addresses are compared in canonical form (node:net's parser after WHATWG
 * URL parsing has turned `2130706433`, `0x7f000001`, `0177.0.0.1` and
 * `127.1` into `127.0.0.1`); IPv6 addresses that embed an IPv4 address
 * (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are
 * judged by the IPv4 address they carry.
 */
import { isIPv4, isIPv6 } from "node:net";

/** Why an address is special, for the denial message. */
export type AddressKind =
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "metadata"
  | "cgnat"
  | "unique-local"
  | "multicast"
  | "reserved"
  | "documentation";

interface Range {
  base: bigint;
  bits: number;
  kind: AddressKind;
}

function v4ToBigInt(address: string): bigint {
  return address.split(".").reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

/** An IPv6 address as 128 bits; `address` must be valid (node:net isIPv6). */
function v6ToBigInt(address: string): bigint {
  let text = address.replace(/^\[|\]$/g, "");
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted IPv4 part stands for the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const v4 = v4ToBigInt(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill("0"), ...tailGroups];
  return groups.reduce((n, group) => (n << 16n) | BigInt(Number.parseInt(group || "0", 16)), 0n);
}

function v4(cidr: string, kind: AddressKind): Range {
  const [base = "", bits = "32"] = cidr.split("/");
  return { base: v4ToBigInt(base), bits: Number(bits), kind };
}

function v6(cidr: string, kind: AddressKind): Range {
  const [base = "", bits = "128"] = cidr.split("/");
  return { base: v6ToBigInt(base), bits: Number(bits), kind };
}

// Most specific first: the first match names the kind.
const V4_RANGES: Range[] = [
  // Instance metadata and credential services: never reachable, whatever is exempted.
  v4("169.254.169.254/32", "metadata"), // AWS, GCP, Azure, OpenStack instance metadata
  v4("169.254.170.2/32", "metadata"), // AWS ECS task credentials
  v4("169.254.170.23/32", "metadata"), // AWS EKS Pod Identity credentials
  v4("100.100.100.200/32", "metadata"), // Alibaba Cloud
  v4("192.0.0.192/32", "metadata"), // Oracle Cloud
  v4("168.63.129.16/32", "metadata"), // Azure WireServer: a public address, but the platform's own
  v4("0.0.0.0/8", "unspecified"),
  v4("10.0.0.0/8", "private"),
  v4("100.64.0.0/10", "cgnat"),
  v4("127.0.0.0/8", "loopback"),
  v4("169.254.0.0/16", "link-local"),
  v4("172.16.0.0/12", "private"),
  v4("192.0.0.0/24", "reserved"), // IETF protocol assignments
  v4("192.0.2.0/24", "documentation"),
  v4("192.88.99.0/24", "reserved"), // 6to4 relay anycast
  v4("192.168.0.0/16", "private"),
  v4("198.18.0.0/15", "reserved"), // benchmarking
  v4("198.51.100.0/24", "documentation"),
  v4("203.0.113.0/24", "documentation"),
  v4("224.0.0.0/4", "multicast"),
  v4("240.0.0.0/4", "reserved"), // includes 255.255.255.255
];

const V6_RANGES: Range[] = [
  v6("fd00:ec2::254/128", "metadata"), // AWS metadata over IPv6
  v6("fd00:ec2::23/128", "metadata"), // AWS EKS Pod Identity over IPv6
  v6("::/128", "unspecified"),
  v6("::1/128", "loopback"),
  v6("::/96", "reserved"), // IPv4-compatible (deprecated)
  v6("64:ff9b:1::/48", "private"), // local-use NAT64
  v6("100::/64", "reserved"), // discard
  v6("2001::/32", "reserved"), // Teredo: the IPv4 address it carries is obfuscated
  v6("2001:db8::/32", "documentation"),
  v6("fc00::/7", "unique-local"),
  v6("fe80::/10", "link-local"),
  v6("fec0::/10", "link-local"), // site-local (deprecated)
  v6("ff00::/8", "multicast"),
];

function inRange(value: bigint, range: Range, width: number): boolean {
  const shift = BigInt(width - range.bits);
  return value >> shift === range.base >> shift;
}

/** The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any. */
function embeddedV4(value: bigint): string | undefined {
  const low32 = value & 0xffffffffn;
  const asV4 = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn)).join(".");
  if (value >> 32n === 0xffffn) return asV4(low32); // ::ffff:a.b.c.d
  if (value >> 32n === 0x0064ff9b0000000000000000n) return asV4(low32); // 64:ff9b::a.b.c.d
  if (value >> 112n === 0x2002n) return asV4((value >> 80n) & 0xffffffffn); // 2002:aabb:ccdd::
  return undefined;
}

/**
 * The special range an address lies in, or undefined for a public address.
 * `address` is an IPv4 or IPv6 address (brackets allowed).
 */
export function addressKind(address: string): AddressKind | undefined {
  const bare = address.replace(/^\[|\]$/g, "");
  if (isIPv4(bare)) {
    const value = v4ToBigInt(bare);
    return V4_RANGES.find((range) => inRange(value, range, 32))?.kind;
  }
  if (isIPv6(bare)) {
    const value = v6ToBigInt(bare);
    const inner = embeddedV4(value);
    if (inner !== undefined) return addressKind(inner);
    return V6_RANGES.find((range) => inRange(value, range, 128))?.kind;
  }
  // Not an address at all: treat as the most restricted.
  return "reserved";
}

/** One canonical spelling of an address, for comparing a resolved address with a granted one. */
export function canonicalAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, "").toLowerCase();
  if (isIPv4(bare)) return bare;
  if (isIPv6(bare)) {
    const value = v6ToBigInt(bare);
    const inner = embeddedV4(value);
    if (inner !== undefined && value >> 32n === 0xffffn) return inner; // ::ffff:a.b.c.d is a.b.c.d
    return value.toString(16).padStart(32, "0");
  }
  return bare;
}

/** Whether a URL hostname (as WHATWG URL gives it) is an IP literal. */
export function isAddressLiteral(hostname: string): boolean {
  const bare = hostname.replace(/^\[|\]$/g, "");
  return isIPv4(bare) || isIPv6(bare);
}

/** Where a connection goes, as its URL names it. */
export interface Destination {
  /** A name or an address, without IPv6 brackets. */
  hostname: string;
  port: number;
}

/** Every address of a name (system lookup or configured DNS servers: net/resolver.ts). */
export type Resolve = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

/** Whether this destination may reach an address of this special kind (public addresses need no exemption). */
export type Exemption = (kind: AddressKind, destination: Destination) => boolean;

export type CheckedDestination =
  | { allowed: true; address: string; family: 4 | 6 }
  | { allowed: false; address: string; kind: AddressKind };

/**
 * Judges a destination before any connection: an address literal as it is,
 * a name by every address it resolves to now. The answer is the address to
 * connect to (the first one; never resolve again) or the first address
 * refused with its kind. Rejects as `resolve` does when a name has no address.
 */
export async function checkDestination(
  destination: Destination,
  resolve: Resolve,
  exempt: Exemption,
): Promise<CheckedDestination> {
  const bare = destination.hostname.replace(/^\[|\]$/g, "");
  const answers = isAddressLiteral(bare) ? [{ address: bare, family: isIPv6(bare) ? 6 : 4 }] : await resolve(bare);
  for (const answer of answers) {
    const kind = addressKind(answer.address);
    if (kind !== undefined && !exempt(kind, destination)) return { allowed: false, address: answer.address, kind };
  }
  const first = answers[0];
  if (!first) throw new Error(`${bare} has no address`);
  return { allowed: true, address: first.address, family: first.family === 6 ? 6 : 4 };
}
