/**
 * A checker of Prometheus text exposition, for hosts without `promtool`:
 * the format's rules (every sample in a declared family, TYPE before its
 * samples, names and label syntax) and the lint rules `promtool check
 * metrics` applies (client_golang's promlint: help text, `_total` on
 * counters only, base units, no type or abbreviated unit in a name, no
 * camelCase or colons, `_bucket`/`_count`/`_sum`, `le` and `quantile`
 * reserved to histograms and summaries). Returns the problems, one line each.
 */

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const BASE_UNITS: Record<string, string> = {
  amperes: "amperes",
  bytes: "bytes",
  celsius: "celsius",
  grams: "grams",
  joules: "joules",
  kelvin: "kelvin",
  meters: "meters",
  metres: "metres",
  seconds: "seconds",
  volts: "volts",
  minutes: "seconds",
  hours: "seconds",
  days: "seconds",
  weeks: "seconds",
  kelvins: "kelvin",
  fahrenheit: "celsius",
  rankine: "celsius",
  inches: "meters",
  yards: "meters",
  miles: "meters",
  bits: "bytes",
  calories: "joules",
  pounds: "grams",
  ounces: "grams",
};
const PREFIXES = [
  "pico",
  "nano",
  "micro",
  "milli",
  "centi",
  "deci",
  "deca",
  "hecto",
  "kilo",
  "kibi",
  "mega",
  "mibi",
  "giga",
  "gibi",
  "tera",
  "tebi",
  "peta",
  "pebi",
];
const ABBREVIATIONS = ["s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"];

interface Family {
  name: string;
  type: string;
  help?: string;
  labels: Set<string>;
  samples: number;
}

/** The label names of a sample's `{...}`, or an error saying what is wrong with it. */
function labelNames(text: string): string[] | string {
  const names: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const match = /^([^=\s]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!match) return `malformed labels {${text}}`;
    const name = match[1] as string;
    if (!LABEL_NAME.test(name)) return `invalid label name ${name}`;
    if (names.includes(name)) return `label ${name} repeated`;
    names.push(name);
    rest = rest.slice(match[0].length);
  }
  return names;
}

function unitProblem(name: string): string | undefined {
  for (const part of name.split("_")) {
    for (const prefix of ["", ...PREFIXES]) {
      if (!part.startsWith(prefix)) continue;
      const base = BASE_UNITS[part.slice(prefix.length)];
      if (base !== undefined) return part === base ? undefined : `use base unit "${base}" instead of "${part}"`;
    }
  }
  return undefined;
}

function lint(family: Family): string[] {
  const { name, type } = family;
  const problems: string[] = [];
  const has = (suffix: string) => name.endsWith(suffix);
  const contains = (word: string) =>
    name.toLowerCase().includes(`_${word}_`) || name.toLowerCase().endsWith(`_${word}`);
  if (!family.help) problems.push("no help text");
  if (type === "counter" && !has("_total")) problems.push('counter metrics should have "_total" suffix');
  if (type !== "counter" && type !== "untyped" && has("_total"))
    problems.push('non-counter metrics should not have "_total" suffix');
  const unit = unitProblem(name);
  if (unit) problems.push(unit);
  for (const typename of ["counter", "gauge", "histogram", "summary"])
    if (contains(typename)) problems.push(`metric name should not include type '${typename}'`);
  if (name.includes(":")) problems.push("metric names should not contain ':'");
  if (/[a-z][A-Z]/.test(name)) problems.push("metric names should be written in 'snake_case' not 'camelCase'");
  for (const label of family.labels)
    if (/[a-z][A-Z]/.test(label)) problems.push("label names should be written in 'snake_case' not 'camelCase'");
  if (ABBREVIATIONS.some(contains)) problems.push("metric names should not contain abbreviated units");
  if (type !== "untyped") {
    if (type !== "histogram" && has("_bucket")) problems.push('non-histogram metrics should not have "_bucket" suffix');
    for (const suffix of ["_count", "_sum"])
      if (type !== "histogram" && type !== "summary" && has(suffix))
        problems.push(`non-histogram and non-summary metrics should not have "${suffix}" suffix`);
    if (type !== "histogram" && family.labels.has("le"))
      problems.push('non-histogram metrics should not have "le" label');
    if (type !== "summary" && family.labels.has("quantile"))
      problems.push('non-summary metrics should not have "quantile" label');
  }
  return problems.map((problem) => `${name}: ${problem}`);
}

/** The family a sample named `sample` belongs to, by the suffixes its type allows. */
function familyOf(families: Map<string, Family>, sample: string): Family | undefined {
  const exact = families.get(sample);
  if (exact) return exact;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.endsWith(suffix)) continue;
    const family = families.get(sample.slice(0, -suffix.length));
    if (family && (family.type === "histogram" || (family.type === "summary" && suffix !== "_bucket"))) return family;
  }
  return undefined;
}

export function checkExposition(text: string): string[] {
  const problems: string[] = [];
  const families = new Map<string, Family>();
  const declare = (name: string) => {
    let family = families.get(name);
    if (!family) {
      family = { name, type: "untyped", labels: new Set(), samples: 0 };
      families.set(name, family);
    }
    return family;
  };
  for (const [index, line] of text.split("\n").entries()) {
    const where = `line ${index + 1}`;
    if (line.trim() === "") continue;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (meta) {
      const [, kind, name = "", rest = ""] = meta;
      if (!NAME.test(name)) {
        problems.push(`${where}: invalid metric name ${name}`);
        continue;
      }
      const family = declare(name);
      if (kind === "HELP") {
        if (family.help !== undefined) problems.push(`${where}: second HELP for ${name}`);
        family.help = rest;
      } else {
        if (!TYPES.has(rest)) problems.push(`${where}: unknown type ${rest} for ${name}`);
        if (family.samples > 0) problems.push(`${where}: TYPE of ${name} after its samples`);
        family.type = rest;
      }
      continue;
    }
    if (line.startsWith("#")) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(line);
    if (!sample) {
      problems.push(`${where}: not a sample: ${line}`);
      continue;
    }
    const [, name = "", labels = "", value = ""] = sample;
    if (!/^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?Inf|NaN)$/.test(value))
      problems.push(`${where}: ${name} has an invalid value ${value}`);
    const names = labelNames(labels);
    if (typeof names === "string") {
      problems.push(`${where}: ${name}: ${names}`);
      continue;
    }
    const family = familyOf(families, name) ?? declare(name);
    family.samples++;
    for (const label of names) family.labels.add(label);
    if (family.type === "histogram" && name.endsWith("_bucket") && !names.includes("le"))
      problems.push(`${where}: ${name} has no le label`);
  }
  for (const family of families.values()) problems.push(...lint(family));
  return problems;
}
