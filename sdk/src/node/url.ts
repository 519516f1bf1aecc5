// node:url inside a function: the Web URL classes. fileURLToPath and the rest have no meaning there.
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;
export default { URL, URLSearchParams };
