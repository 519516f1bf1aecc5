/**
 * `WWW-Authenticate` challenges (RFC 7235) as registries send them:
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
 * or `Basic realm="..."`. Parameter values may be quoted strings with
 * backslash escapes and commas inside; several challenges may share one header.
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < header.length && /[\s,]/.test(header[i] as string)) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  while (i < header.length) {
    skipSpace();
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      while (i < header.length && /[\s]/.test(header[i] as string)) i++;
      const mark = i;
      const name = token();
      while (i < header.length && header[i] === " ") i++;
      if (!name || header[i] !== "=") {
        // Not a parameter: the next challenge's scheme (or a token68 we do not use).
        i = mark;
        break;
      }
      i++;
      while (i < header.length && header[i] === " ") i++;
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        // Unquoted: up to the next comma or space (lenient: realms are sometimes left unquoted).
        const start = i;
        while (i < header.length && !/[\s,]/.test(header[i] as string)) i++;
        value = header.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
      while (i < header.length && header[i] === " ") i++;
      if (header[i] === ",") i++;
      else break;
    }
  }
  return challenges;
}
