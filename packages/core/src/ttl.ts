import { PersistError } from "./errors.js";

/**
 * Checks a `ttlMs` option: `undefined` (no expiry) or a positive whole number of milliseconds.
 * Returns it unchanged.
 */
export function assertTtl(ttlMs: number | undefined, backend: string): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new PersistError(`ttlMs must be a positive whole number of milliseconds, got ${ttlMs}`, {
      backend,
      operation: "create",
    });
  }
  return ttlMs;
}

/** When a row written now expires, in milliseconds since the epoch, or `undefined` for never. */
export function expiresAt(ttlMs: number | undefined, now = Date.now()): number | undefined {
  return ttlMs === undefined ? undefined : now + ttlMs;
}
