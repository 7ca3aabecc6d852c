import { InvalidOptionError } from "../errors.js";

/** The bounds of a whole-number option. */
export interface WholeNumberBounds {
  /** Used when the option is `undefined`. */
  default: number;
  min: number;
  /** Default: `Number.MAX_SAFE_INTEGER`. */
  max?: number;
}

/**
 * Checks a whole-number option (a timeout, a count, a file mode) and returns it, or its default
 * when it is `undefined`; anything else throws {@link InvalidOptionError}, with one message shape
 * for every backend.
 * @example wholeNumberOption("redis", "timeoutMs", options.timeoutMs, { default: 5000, min: 1 })
 */
export function wholeNumberOption(backend: string, option: string, value: unknown, bounds: WholeNumberBounds): number {
  if (value === undefined) return bounds.default;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (Number.isSafeInteger(value) && (value as number) >= bounds.min && (value as number) <= max) {
    return value as number;
  }
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${bounds.min}` : `from ${bounds.min} to ${max}`;
  throw new InvalidOptionError(`${option} must be a whole number ${range}, got ${describeValue(value)}`, {
    backend,
    operation: "create",
  });
}

/** Throws {@link InvalidOptionError} when two options that exclude each other are both given. */
export function assertExclusiveOptions(backend: string, options: Record<string, unknown>): void {
  const given = Object.entries(options)
    .filter(([, value]) => value !== undefined)
    .map(([name]) => name);
  if (given.length <= 1) return;
  throw new InvalidOptionError(`give only one of ${Object.keys(options).join(", ")}, got ${given.join(" and ")}`, {
    backend,
    operation: "create",
  });
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}
