/**
 * wasi:filesystem, denied: the guest gets no preopened directory, so it has
 * no path to open, and any descriptor method answers `access`. The engine
 * imports the interface whether or not a function uses it; bundled read-only
 * files are a later, explicit grant.
 */

/** The wasi:filesystem error-code every operation answers with. */
const ACCESS = "access";

class Descriptor {
  writeViaStream(): never {
    throw ACCESS;
  }
  appendViaStream(): never {
    throw ACCESS;
  }
  getFlags(): never {
    throw ACCESS;
  }
  getType(): never {
    throw ACCESS;
  }
  stat(): never {
    throw ACCESS;
  }
}

export function filesystemImports() {
  return {
    "wasi:filesystem/preopens": { getDirectories: () => [] },
    "wasi:filesystem/types": {
      Descriptor,
      filesystemErrorCode: (_error: unknown) => ACCESS,
    },
  };
}
