// Types of the `joule:function/host` import of sdk/wit/world.wit, as
// componentize-js presents it to JavaScript. Keep in step with the WIT file.
declare module "joule:function/host@0.2.0" {
  export type LogLevel = "debug" | "info" | "warn" | "error";
  export function log(level: LogLevel, message: string): void;
  export function environment(): Array<[string, string]>;
  export function outboundRefusal(url: string): [string, string] | undefined;
}

declare module "joule:function/kv@0.2.0" {
  export function get(store: string, key: string): Uint8Array | undefined;
  export function set(store: string, key: string, value: Uint8Array, ttlMs: bigint | undefined): void;
  function del(store: string, key: string): boolean;

  export { del as delete };
  export function list(store: string, prefix: string, limit: number): string[];
}

declare module "joule:function/body@0.2.0" {
  export function read(max: number): Uint8Array | undefined;
  export function respond(status: number, headers: Array<[string, string]>): void;
  export function write(bytes: Uint8Array): void;
}

declare module "joule:function/files@0.2.0" {
  export function read(path: string): Uint8Array;
  export function list(dir: string): string[];
}
