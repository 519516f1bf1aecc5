/** Table-driven checks of the network policy, origin patterns and file paths, bypass spellings included. */
import { describe, expect, it } from "vitest";
import { checkGuestPath, checkSourcePath } from "../../host/src/capabilities/files-paths.ts";
import { covers, matchesOrigin, parseOriginPattern } from "../../host/src/capabilities/origin-pattern.ts";
import { addressKind } from "../../host/src/net/net-policy.ts";

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
