/** Refill periods such as "30s", "15m", "1h", "1d", "1w". */
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export const PERIOD = /^(\d+)(s|m|h|d|w)$/;

export function periodMs(text: string): number {
  const match = PERIOD.exec(text);
  if (!match) throw new Error(`not a period: ${text}`);
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}
