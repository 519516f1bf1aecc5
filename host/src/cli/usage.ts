/** `joule help`: every command and its options, in one place. */
export const USAGE = `joule — WebAssembly functions

  joule init <dir> [--template http|hono|scheduled|events] [--name N]
                                          a new function: joule.json, src/index.ts, a test, package.json, tsconfig.json
  joule dev [dir] [--port P] [--data-dir D]
                                          a host here with the function deployed; rebuilds and swaps it on
                                          every save, errors in place (default port 8787, a temporary data dir)
  joule build <dir>... [--force] [--typecheck]
                                          bundle and componentize functions (dir holds joule.json);
                                          --typecheck runs tsc --noEmit there first
  joule deploy <dir> [--name N] [--narrow JSON]
                                          build if needed, then deploy to a host (with the
                                          files of capabilities.files; --narrow grants less)
  joule deploy oci://<registry>/<repo>:<tag>|@sha256:<d> [--name N]
                                          the host pulls the artifact and deploys it (name: --name or the repo's last segment)
  joule package <dir> [--out D] [--tag T] build if needed, then write an OCI image layout (default <dir>/dist/oci, tag latest)
  joule push <layout[:tag]|dir> <registry>/<repo>:<tag> [--chunk-size BYTES]
                                          push an artifact (a function dir is packaged first)
  joule pull <registry>/<repo>:<tag>|@sha256:<d> [dir]
                                          pull an artifact into an OCI image layout (default ./<repo's last segment>)
  joule invoke <name> [path] [-X M] [-H 'N: v']... [-d BODY|@file|@-]
                                          call a deployed function as curl would; exits 1 on an error answer
  joule list                              list deployed functions
  joule delete <name>                     remove a deployed function
  joule serve [--port P] [--data-dir D] [--examples DIR | --no-examples]
                                          run a host; builds and deploys the example functions
  joule calibrate [--data-dir D] [--seconds S] [--watts W] [--powercap DIR]
                                          measure fuel per second (and power per core, where RAPL
                                          counters can be read) for the energy model
  joule bench                             compare cold and warm latency against the alternatives
  joule keys create --scopes S1,S2 [--functions F1,F2] [--name N] | list | revoke <id>
                                          API keys of the host whose data dir this is, or with --host
                                          of that host (the key needs keys:manage)

  joule secrets set <name> --functions F1,F2|'*' [--value V] | list | delete <name>
                                          values env may reference as secret://<name>, in the data dir
                                          of the host here, or with --host of that host (secrets:manage)

Scopes: functions:manage, functions:invoke, energy:manage, artifacts:manage, audit:read, keys:manage,
  metrics:read, secrets:manage

Registry: --insecure (plain HTTP; loopback registries always are), --auth-file F (default $REGISTRY_AUTH_FILE,
  $DOCKER_CONFIG/config.json, ~/.docker/config.json), --username U --password-stdin

Common: --host URL (default $JOULE_HOST or http://127.0.0.1:8080), --key K (default $JOULE_API_KEY), --json`;
