/**
 * The host's secrets key: 32 random bytes that seal the values in
 * secrets.db (capabilities/secrets-seal.ts), kept in a file of their own,
 * base64-encoded on one line (what `openssl rand -base64 32` prints).
 *
 * The file is never inside the data dir: whoever can read the data dir (a
 * copy, a backup, a file-read bug) must not get the key with it. It is
 * `JOULE_SECRETS_KEY_FILE`, or, when that is unset, `<dataDir>.secrets-key`
 * beside the data dir, made at first start: mode 0600, complete before it
 * has its name (written under a temporary name, then hard-linked, which fails
 * if the name exists), so a host and `joule secrets` starting together agree
 * on one key and neither ever reads a half-written one. A named file is only
 * ever read: a missing mount must not silently become a new key.
 *
 * Every problem is JOULE_ERR_SECRET_STORE_UNUSABLE naming the file and what to
 * do: missing while the store holds sealed values, unreadable, not a regular
 * file, open to group or others, not 32 bytes, or inside the data dir.
 */

import { createSecretKey, type KeyObject, randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";
import { JouleError } from "../errors.ts";

const KEY_BYTES = 32;
/** 32 bytes in base64: 43 characters and one `=`. */
const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/;
const MAKE_ONE = `make one with \`openssl rand -base64 ${KEY_BYTES} > FILE && chmod 600 FILE\``;

export interface SecretsKey {
  key: KeyObject;
  /** The file it was read from. */
  path: string;
  /** Made by this call (a first start): the operator must learn where it is, to keep a copy. */
  generated: boolean;
}

/** Where a data dir's key lives when `JOULE_SECRETS_KEY_FILE` is unset: beside it, never in it. */
export function defaultKeyFile(dataDir: string): string {
  return `${dataDir}.secrets-key`;
}

function unusable(message: string): JouleError {
  return new JouleError("JOULE_ERR_SECRET_STORE_UNUSABLE", message);
}

/**
 * The key of a data dir's secret store, for the host and `joule secrets`.
 * `sealed`: how many values the store holds under some key; a default key
 * file is made only when there are none (else they could never be opened).
 */
export function resolveKey(options: { dataDir: string; keyFile: string | undefined; sealed: number }): SecretsKey {
  const path = options.keyFile ?? defaultKeyFile(options.dataDir);
  if (inside(path, options.dataDir)) {
    throw unusable(
      `the secrets key file ${path} is inside the data dir ${options.dataDir}: whoever reads the data dir would read the key with it; move it outside and set JOULE_SECRETS_KEY_FILE to it`,
    );
  }
  const generated = options.keyFile === undefined && options.sealed === 0 && createExclusive(path);
  const key = readKeyFile(path);
  if (key) return { key, path, generated };
  if (options.keyFile !== undefined) {
    throw unusable(`JOULE_SECRETS_KEY_FILE names ${path}, which does not exist: ${MAKE_ONE}, or unset it`);
  }
  throw unusable(
    `secrets.db in ${options.dataDir} holds ${options.sealed} sealed secret(s) but their key file ${path} is missing: restore it from your copy (or set JOULE_SECRETS_KEY_FILE to where it is); without it they cannot be read, and deleting secrets.db and setting them again is the only way on`,
  );
}

/**
 * Reads and checks a key file (undefined if there is none); it is never made
 * here. The messages name the file: for the operator, never for a response.
 */
export function readKeyFile(path: string): KeyObject | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in the key's place must not hang the host.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw unusable(
      `the secrets key file ${path} cannot be read (${code}): make it readable by the user the host runs as`,
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw unusable(`the secrets key file ${path} is not a regular file: ${MAKE_ONE}`);
    if ((stat.mode & 0o077) !== 0) {
      throw unusable(
        `the secrets key file ${path} has mode ${(stat.mode & 0o777).toString(8)}, open to group or others: run \`chmod 600 ${path}\``,
      );
    }
    // Bounded: a key file is 45 bytes, and a wrong file may be anything.
    const text = stat.size > 1024 ? "" : readFileSync(fd, "utf8").trim();
    if (!KEY_TEXT.test(text)) {
      throw unusable(
        `the secrets key file ${path} does not hold ${KEY_BYTES} base64-encoded bytes (it has ${stat.size} bytes): ${MAKE_ONE}`,
      );
    }
    const raw = Buffer.from(text, "base64");
    // A KeyObject never prints its bytes (util.inspect, a log of the wrong object).
    const key = createSecretKey(raw);
    raw.fill(0);
    return key;
  } finally {
    closeSync(fd);
  }
}

/** Makes the key file if it does not exist; true if this call made it. */
function createExclusive(path: string): boolean {
  const temporary = `${path}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(temporary, "wx", 0o600);
  try {
    try {
      writeSync(fd, `${randomBytes(KEY_BYTES).toString("base64")}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false; // another start made it first
      throw error;
    }
    syncDirectory(dirname(path)); // the key must outlive a crash as surely as what it sealed
    return true;
  } finally {
    rmSync(temporary, { force: true });
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Whether `path` is the data dir or lies within it, through symlinks too. */
function inside(path: string, dataDir: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return join(real(dirname(p)), basename(p));
    }
  };
  const rel = relative(real(dataDir), real(path));
  return rel === "" || !(rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel));
}
