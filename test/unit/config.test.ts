import { describe, expect, it } from "vitest";
import { ConfigError, configFromEnv, loadConfig } from "../../host/src/config.ts";

describe("host configuration", () => {
  it("has defaults: loopback, port 8080, 6 MiB bodies, ./.joule, one worker per core", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ host: "127.0.0.1", port: 8080, maxBodyBytes: 6 * 1024 * 1024 });
    expect(config.dataDir).toMatch(/\/\.joule$/);
    expect(config.workers).toBeGreaterThan(0);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads HOST, PORT and JOULE_* variables", () => {
    const env = { HOST: "0.0.0.0", PORT: "9000", JOULE_WORKERS: "3", JOULE_ADMIN_TOKEN: "0123456789abcdef" };
    expect(loadConfig(configFromEnv(env))).toMatchObject({ host: "0.0.0.0", port: 9000, workers: 3 });
  });

  it("reads the OCI settings: layer limit, registry auth file, plain-HTTP registries", () => {
    const env = {
      JOULE_OCI_MAX_LAYER_BYTES: "1048576",
      JOULE_REGISTRY_AUTH_FILE: "/etc/joule/auth.json",
      JOULE_INSECURE_REGISTRIES: "registry.lan:5000, 10.0.0.5:5000",
    };
    expect(loadConfig(configFromEnv(env))).toMatchObject({
      ociMaxLayerBytes: 1048576,
      registryAuthFile: "/etc/joule/auth.json",
      insecureRegistries: ["registry.lan:5000", "10.0.0.5:5000"],
    });
    expect(loadConfig({}).insecureRegistries).toEqual([]);
    expect(() => loadConfig({ ociMaxLayerBytes: "0" })).toThrow(/config\.ociMaxLayerBytes/);
  });

  it("reads JOULE_SECRETS_KEY_FILE as an absolute path, and leaves it unset by default (beside the data dir)", () => {
    expect(loadConfig(configFromEnv({ JOULE_SECRETS_KEY_FILE: "keys/joule.key" })).secretsKeyFile).toBe(
      `${process.cwd()}/keys/joule.key`,
    );
    expect(loadConfig({}).secretsKeyFile).toBeUndefined();
  });

  it("reads JOULE_PRIVATE_REGISTRIES (empty by default) and names a bad entry", () => {
    const env = { JOULE_PRIVATE_REGISTRIES: "registry.lan:5000, 10.0.0.5, [fd00::5]:443" };
    expect(loadConfig(configFromEnv(env)).privateRegistries).toEqual([
      "registry.lan:5000",
      "10.0.0.5",
      "[fd00::5]:443",
    ]);
    expect(loadConfig({}).privateRegistries).toEqual([]);
    expect(() => loadConfig({ privateRegistries: "ok:5000,http://bad:5000" })).toThrow(
      /config\.privateRegistries\.1: must be host, host:port or \[ipv6\]:port/,
    );
    expect(() => loadConfig({ privateRegistries: "registry.lan:0" })).toThrow(/config\.privateRegistries\.0/);
  });

  it("ignores the CLI's own settings, JOULE_API_KEY and JOULE_HOST, which users export in the same shell", () => {
    const env = { JOULE_API_KEY: "jk_0123456789abcdef_secret", JOULE_HOST: "http://127.0.0.1:9000", PORT: "9001" };
    expect(configFromEnv(env)).toEqual({ port: "9001" });
  });

  it("still stops at an unknown JOULE_* variable, naming it and the setting it most likely meant", () => {
    expect(() => configFromEnv({ JOULE_WORKER: "2" })).toThrow(ConfigError);
    expect(() => configFromEnv({ JOULE_WORKER: "2" })).toThrow(
      /unknown setting JOULE_WORKER \(did you mean JOULE_WORKERS\?\)/,
    );
    expect(() => configFromEnv({ JOULE_API_KY: "x" })).toThrow(/did you mean JOULE_API_KEY\?/);
    expect(() => configFromEnv({ JOULE_FROBNICATE: "1" })).toThrow(
      /^unknown setting JOULE_FROBNICATE; host settings: /,
    );
  });

  it("names the exact option that is invalid", () => {
    expect(() => loadConfig({ port: "99999" })).toThrow(ConfigError);
    expect(() => loadConfig({ port: "99999" })).toThrow(/config\.port/);
    expect(() => loadConfig({ adminToken: "short" })).toThrow(/config\.adminToken: must be at least 16 characters/);
    expect(() => loadConfig({ nope: 1 } as never)).toThrow(/nope/);
  });
});
