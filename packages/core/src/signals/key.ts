import { InvalidKeyError, type PersistErrorContext } from "../errors.js";

/** The longest strategy name or symbol, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 255;

/** Identifies one stored signal: at most one open signal per strategy and symbol. */
export interface SignalKey {
  strategyName: string;
  symbol: string;
}

// C0 controls, DEL and C1 controls.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `name` cannot be a strategy name or symbol, or `undefined` when it can. */
export function keyProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return `must be a string, got ${typeof name}`;
  if (name.length === 0) return "must not be empty";
  // A lone surrogate has no UTF-8 form: two different names would encode to the same bytes.
  if (!name.isWellFormed()) return "must be well-formed Unicode (no lone surrogates)";
  if (CONTROL_CHARACTER.test(name)) return "must not contain control characters";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} UTF-8 bytes, got ${bytes}`;
  return undefined;
}

/**
 * Throws {@link InvalidKeyError} unless both names can be stored. Any other character is allowed,
 * so ccxt symbols such as `BTC/USDT` and `ETH/USDT:USDT` work.
 */
export function assertSignalKey(
  symbol: unknown,
  strategyName: unknown,
  context: Omit<PersistErrorContext, "symbol" | "strategyName">,
): void {
  const problem =
    describeProblem("strategyName", keyProblem(strategyName)) ?? describeProblem("symbol", keyProblem(symbol));
  if (problem === undefined) return;
  throw new InvalidKeyError(problem, {
    ...context,
    strategyName: typeof strategyName === "string" ? strategyName : undefined,
    symbol: typeof symbol === "string" ? symbol : undefined,
  });
}

function describeProblem(field: string, problem: string | undefined): string | undefined {
  return problem === undefined ? undefined : `${field} ${problem}`;
}

/** A string that identifies a valid key in maps; valid names hold no NUL, so it is unambiguous. */
export function signalKeyId(symbol: string, strategyName: string): string {
  return `${strategyName}\u0000${symbol}`;
}
