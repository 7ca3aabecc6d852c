import { InvalidOptionError } from "./errors.js";

/** The longest TTL, in milliseconds: 100 years, so an expiry time fits every store's clock type. */
export const MAX_TTL_MS = 100 * 365 * 24 * 60 * 60 * 1000;

/**
 * Checks a `ttlMs` option: `undefined` (no expiry) or a whole number of milliseconds from 1 to
 * {@link MAX_TTL_MS}. Returns it unchanged; anything else throws {@link InvalidOptionError}.
 */
export function assertTtl(ttlMs: unknown, backend: string): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) <= 0 || (ttlMs as number) > MAX_TTL_MS) {
    throw new InvalidOptionError(
      `ttlMs must be a whole number of milliseconds from 1 to ${MAX_TTL_MS}, got ${String(ttlMs)}`,
      {
        backend,
        operation: "create",
      },
    );
  }
  return ttlMs as number;
}
