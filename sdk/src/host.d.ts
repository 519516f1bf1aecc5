// Types of the `joule:function/host` import of sdk/wit/world.wit, as
// componentize-js presents it to JavaScript. Keep in step with the WIT file.
declare module "joule:function/host@0.1.0" {
  export type LogLevel = "debug" | "info" | "warn" | "error";
  export function log(level: LogLevel, message: string): void;
  export function environment(): Array<[string, string]>;
}
