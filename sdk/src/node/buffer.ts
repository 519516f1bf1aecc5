// node:buffer inside a function: its Web parts (Blob, File, atob, btoa); not Buffer itself.
export const Blob = globalThis.Blob;
export const File = globalThis.File;
export const atob = globalThis.atob;
export const btoa = globalThis.btoa;
export default { Blob, File, atob, btoa };
