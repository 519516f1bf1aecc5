/**
 * Waits for what the code under test does on its own (a flush behind, a
 * probe, a recovery): runs `check` until it returns without throwing and
 * hands back what it returned. Past `timeoutMs` the last failure is thrown,
 * so the test says what was still wrong, not just that time ran out.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= until) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
