// node:util inside a function: its Web parts. What Node has beyond them is a build error naming the importer.
export const TextEncoder = globalThis.TextEncoder;
export const TextDecoder = globalThis.TextDecoder;
export default { TextEncoder, TextDecoder };
