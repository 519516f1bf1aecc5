/// <reference path="./host.d.ts" />
/**
 * `files` of the SDK: the read-only files shipped with the function
 * (`capabilities.files` in joule.json), by their guest paths. StarlingMonkey
 * has no `fs`; this is the whole of the filesystem a function sees.
 */
import type * as FilesImport from "joule:function/files@0.2.0";
import { CapabilityDeniedError, witError } from "./errors.ts";

/** The shipped files (`capabilities.files`), read-only. */
export interface Files {
  /** The file's bytes; rejects for a path outside the mounts (CapabilityDeniedError) or not shipped. */
  bytes(path: string): Promise<Uint8Array>;
  /** The file as UTF-8 text. */
  text(path: string): Promise<string>;
  /** The file parsed as JSON. */
  json<T = unknown>(path: string): Promise<T>;
  /** Paths of the files under a mounted directory, in order. */
  list(dir: string): Promise<string[]>;
}

function call<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    const wit = witError(error);
    if (wit?.tag === "denied") throw new CapabilityDeniedError(wit.val);
    if (wit) throw new Error(`files ${wit.tag}: ${wit.val}`);
    throw error;
  }
}

export function makeFiles(files: typeof FilesImport | undefined): Files {
  const read = async (path: string): Promise<Uint8Array> => {
    if (!files) throw new CapabilityDeniedError("ctx.files needs capabilities.files in joule.json");
    return call(() => files.read(path));
  };
  return {
    bytes: read,
    text: async (path) => new TextDecoder().decode(await read(path)),
    json: async (path) => JSON.parse(new TextDecoder().decode(await read(path))),
    async list(dir) {
      if (!files) throw new CapabilityDeniedError("ctx.files needs capabilities.files in joule.json");
      return call(() => files.list(dir));
    },
  };
}
