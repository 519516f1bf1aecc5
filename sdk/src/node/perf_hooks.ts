// node:perf_hooks inside a function: the Web performance clock.
export const performance = globalThis.performance;
export default { performance };
