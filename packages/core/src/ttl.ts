import { InvalidOptionError } from "./errors.js";

/**
 * Checks a `ttlMs` option: `undefined` (no expiry) or a positive whole number of milliseconds.
 * Returns it unchanged; anything else throws {@link InvalidOptionError}.
 */
export function assertTtl(ttlMs: unknown, backend: string): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) <= 0) {
    throw new InvalidOptionError(`ttlMs must be a positive whole number of milliseconds, got ${String(ttlMs)}`, {
      backend,
      operation: "create",
    });
  }
  return ttlMs as number;
}
