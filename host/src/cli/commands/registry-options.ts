/** The options of the commands that talk to an OCI registry (push, pull), and the credentials they lead to. */
import { type Credentials, credentialLookup, defaultAuthFile } from "../../oci/credentials.ts";
import { readStdin, usageError } from "../args.ts";

export const REGISTRY_OPTIONS = {
  insecure: { type: "boolean", default: false },
  "auth-file": { type: "string" },
  username: { type: "string" },
  "password-stdin": { type: "boolean", default: false },
} as const;

export async function registryCredentials(
  values: {
    "auth-file"?: string | boolean | undefined;
    username?: string | boolean | undefined;
    "password-stdin"?: string | boolean | undefined;
  },
  registry: string,
) {
  let explicit: Credentials | undefined;
  if (values.username !== undefined) {
    if (!values["password-stdin"])
      throw usageError("--username needs --password-stdin (the password is read from stdin)");
    explicit = { username: String(values.username), password: (await readStdin()).replace(/\r?\n$/, "") };
  }
  const file = (values["auth-file"] as string | undefined) ?? defaultAuthFile();
  return credentialLookup({ file, registry, explicit });
}
