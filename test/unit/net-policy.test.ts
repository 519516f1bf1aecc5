/** Table-driven checks of the network policy, origin patterns and file paths, bypass spellings included. */
import { describe, expect, it } from "vitest";
import { checkGuestPath, checkSourcePath } from "../../host/src/capabilities/files-paths.ts";
import { covers, matchesOrigin, parseOriginPattern } from "../../host/src/capabilities/origin-pattern.ts";
import { type AddressKind, addressKind, checkDestination, type Resolve } from "../../host/src/net/net-policy.ts";
import { listedRegistries } from "../../host/src/oci/registry-address-policy.ts";

describe("address policy", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "metadata"],
    ["169.254.1.1", "link-local"],
    ["100.64.0.1", "cgnat"],
    ["100.100.100.200", "metadata"],
    ["169.254.170.2", "metadata"],
    ["169.254.170.23", "metadata"],
    ["192.0.0.192", "metadata"],
    ["168.63.129.16", "metadata"],
    ["100.127.255.255", "cgnat"],
    ["0.0.0.0", "unspecified"],
    ["0.255.255.255", "unspecified"],
    ["10.255.255.255", "private"],
    ["169.254.255.255", "link-local"],
    ["192.0.0.1", "reserved"],
    ["192.0.2.1", "documentation"],
    ["192.88.99.1", "reserved"],
    ["198.18.0.1", "reserved"],
    ["198.19.255.255", "reserved"],
    ["198.51.100.1", "documentation"],
    ["203.0.113.1", "documentation"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["::", "unspecified"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:a9fe:a9fe", "metadata"],
    ["64:ff9b::7f00:1", "loopback"],
    ["64:ff9b::a00:1", "private"],
    ["2002:7f00:1::", "loopback"],
    ["2002:a9fe:a9fe::1", "metadata"],
    ["::127.0.0.1", "reserved"],
    ["fd00:ec2::254", "metadata"],
    ["fd00:ec2::23", "metadata"],
    ["::ffff:100.100.100.200", "metadata"],
    ["64:ff9b:1::1", "private"],
    ["100::1", "reserved"],
    ["2001::1", "reserved"],
    ["2001:0:4136:e378::1", "reserved"],
    ["fec0::1", "link-local"],
    ["fd12:3456::1", "unique-local"],
    ["fc00::1", "unique-local"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"],
    ["not-an-address", "reserved"],
  ])("%s is %s", (address, kind) => {
    expect(addressKind(address)).toBe(kind);
  });

  it.each([
    "93.184.215.14",
    "8.8.8.8",
    "1.0.0.1",
    "9.255.255.255",
    "11.0.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "168.63.129.17",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "192.167.255.255",
    "192.169.0.0",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700::1111",
    "2001:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
  ])("%s is public", (address) => {
    expect(addressKind(address)).toBeUndefined();
  });

  it.each([
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0x7f.0.0.1/",
    "http://127.000.000.001/",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
  ])("%s is loopback once the URL is parsed", (url) => {
    expect(addressKind(new URL(url).hostname)).toBe("loopback");
  });
});

describe("checking a destination before connecting", () => {
  /** One address of every kind, and a public one. */
  const ONE_OF_EACH: Array<[string, AddressKind | "public"]> = [
    ["127.0.0.1", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["192.168.0.1", "private"],
    ["169.254.1.1", "link-local"],
    ["169.254.169.254", "metadata"],
    ["fd00:ec2::254", "metadata"],
    ["100.64.0.1", "cgnat"],
    ["fd12::1", "unique-local"],
    ["fe80::1", "link-local"],
    ["::1", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "documentation"],
    ["8.8.8.8", "public"],
    ["2606:4700::1111", "public"],
  ];
  /** A scripted resolver: name → answers; it records what it was asked. */
  function scripted(answers: Record<string, string[]>): Resolve & { asked: string[] } {
    const asked: string[] = [];
    const resolve = async (name: string) => {
      asked.push(name);
      const found = answers[name];
      if (!found) throw new Error(`${name} has no address`);
      return found.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    };
    return Object.assign(resolve, { asked });
  }
  const nothingListed = listedRegistries([]);

  it.each(ONE_OF_EACH)(
    "with nothing listed, %s (%s) is refused unless public, as a literal and as what a name resolves to",
    async (address, kind) => {
      const resolve = scripted({ "registry.test": [address] });
      for (const hostname of [address, "registry.test"]) {
        const checked = await checkDestination({ hostname, port: 443 }, resolve, nothingListed);
        expect(checked).toEqual(
          kind === "public"
            ? { allowed: true, address, family: address.includes(":") ? 6 : 4 }
            : { allowed: false, address, kind },
        );
      }
      // The literal is judged as it is; only the name was resolved.
      expect(resolve.asked).toEqual(["registry.test"]);
    },
  );

  it.each(ONE_OF_EACH)("a listed registry may reach %s (%s), unless it is metadata", async (address, kind) => {
    const literal = address.includes(":") ? `[${address}]` : address;
    const exempt = listedRegistries([`${literal}:5000`, "registry.test:5000"]);
    const resolve = scripted({ "registry.test": [address] });
    for (const hostname of [address, "registry.test"]) {
      const checked = await checkDestination({ hostname, port: 5000 }, resolve, exempt);
      expect(checked.allowed, `${hostname} → ${address}`).toBe(kind !== "metadata");
      // Another port of the same host is not listed.
      const other = await checkDestination({ hostname, port: 5001 }, resolve, exempt);
      expect(other.allowed).toBe(kind === "public");
    }
  });

  it("refuses a name if any of its addresses is special, and connects to the first of a clean answer", async () => {
    const resolve = scripted({ "mixed.test": ["8.8.8.8", "10.0.0.1"], "clean.test": ["8.8.4.4", "1.1.1.1"] });
    expect(await checkDestination({ hostname: "mixed.test", port: 443 }, resolve, nothingListed)).toEqual({
      allowed: false,
      address: "10.0.0.1",
      kind: "private",
    });
    expect(await checkDestination({ hostname: "clean.test", port: 443 }, resolve, nothingListed)).toEqual({
      allowed: true,
      address: "8.8.4.4",
      family: 4,
    });
    await expect(checkDestination({ hostname: "none.test", port: 443 }, resolve, nothingListed)).rejects.toThrow(
      "none.test has no address",
    );
  });

  it.each([
    ["127.0.0.1", "127.0.0.1", 5000, true],
    ["127.1:5000", "127.0.0.1", 5000, true],
    ["2130706433:5000", "127.0.0.1", 5000, true],
    ["127.0.0.1:5000", "127.0.0.2", 5000, false],
    ["127.0.0.1:5000", "127.0.0.1", 443, false],
    ["Registry.LAN", "registry.lan", 443, true],
    ["registry.lan:443", "registry.lan", 443, true],
    ["registry.lan", "registry.lan.evil.test", 443, false],
    ["registry.lan", "evilregistry.lan", 443, false],
    ["[::1]:5000", "::1", 5000, true],
    ["[0:0:0:0:0:0:0:1]:5000", "::1", 5000, true],
    ["[::1]:5000", "::ffff:127.0.0.1", 5000, false],
    ["169.254.169.254", "169.254.169.254", 80, false],
    ["[fd00:ec2::254]", "fd00:ec2::254", 80, false],
    ["http://127.0.0.1:5000", "127.0.0.1", 5000, false],
  ])("listing %s lets %s:%i reach a private address: %s", async (entry, hostname, port, expected) => {
    const internal = async () => [{ address: "10.0.0.1", family: 4 }];
    const checked = await checkDestination({ hostname, port }, internal, listedRegistries([entry]));
    expect(checked.allowed).toBe(expected);
  });
});

describe("origin patterns", () => {
  const allows = (pattern: string, url: string) => matchesOrigin(parseOriginPattern(pattern), new URL(url));

  it.each([
    ["https://api.example.com", "https://api.example.com/v1?x", true],
    ["https://api.example.com", "https://API.Example.com/", true],
    ["https://api.example.com", "http://api.example.com/", false],
    ["https://api.example.com", "https://api.example.com:8443/", false],
    ["https://api.example.com:8443", "https://api.example.com:8443/", true],
    ["https://api.example.com", "https://api.example.com.evil.net/", false],
    ["https://api.example.com", "https://evilapi.example.com/", false],
    ["https://*.example.com", "https://a.example.com/", true],
    ["https://*.example.com", "https://a.b.example.com/", true],
    ["https://*.example.com", "https://example.com/", false],
    ["https://*.example.com", "https://badexample.com/", false],
    ["http://127.0.0.1:*", "http://127.0.0.1:1234/", true],
    ["http://127.0.0.1:8080", "http://2130706433:8080/", true],
    ["http://127.0.0.1:8080", "http://[::ffff:127.0.0.1]:8080/", false],
    ["http://[::1]:8080", "http://[::1]:8080/", true],
  ])("%s, %s: %s", (pattern, url, expected) => {
    expect(allows(pattern, url)).toBe(expected);
  });

  it.each([
    "api.example.com",
    "ftp://example.com",
    "https://example.com/path",
    "https://user@example.com",
    "https://*.127.0.0.1",
    "https://*",
    "https://example.com:0",
    "https://example.com:70000",
    "https://exa mple.com",
  ])("refuses %s", (pattern) => {
    expect(() => parseOriginPattern(pattern)).toThrow();
  });

  it("tells whether a narrowed pattern stays within a declared one", () => {
    const c = (outer: string, inner: string) => covers(parseOriginPattern(outer), parseOriginPattern(inner));
    expect(c("https://*.example.com", "https://api.example.com")).toBe(true);
    expect(c("https://*.example.com", "https://*.api.example.com")).toBe(true);
    expect(c("https://*.example.com", "https://example.com")).toBe(false);
    expect(c("https://api.example.com", "https://*.api.example.com")).toBe(false);
    expect(c("http://127.0.0.1:*", "http://127.0.0.1:8080")).toBe(true);
    expect(c("http://127.0.0.1:8080", "http://127.0.0.1:*")).toBe(false);
  });
});

describe("file paths", () => {
  it.each([
    "/data/../etc/passwd",
    "/data/./a",
    "/data//a",
    "data/a",
    "/data/%2e%2e/etc/passwd",
    "/data/..%2fetc",
    "/data\\..\\etc",
    "/data/a\u0000.txt",
    "/data/a\n",
    "/..",
    `/${"a".repeat(1100)}`,
  ])("refuses the guest path %j", (path) => {
    expect(checkGuestPath(path)).toBeDefined();
  });

  it.each(["../x", "/etc/passwd", "C:/x", "a/../../x", "a/%2e%2e", "a\\b"])("refuses the source %j", (path) => {
    expect(checkSourcePath(path)).toBeDefined();
  });

  it("accepts plain paths", () => {
    expect(checkGuestPath("/data/nested/b.txt")).toBeUndefined();
    expect(checkSourcePath("assets/")).toBeUndefined();
  });
});
