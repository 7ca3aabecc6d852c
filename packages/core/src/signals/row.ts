import { CorruptDataError, errorMessage, InvalidSignalError, type PersistErrorContext } from "../errors.js";

/** Direction of a position. */
export type SignalPosition = "long" | "short";

/** One partial close of a position. */
export interface ISignalPartialClose {
  type: "profit" | "loss";
  /** Share of the position closed, in percent. */
  percent: number;
  /** Price at which that share was closed. */
  price: number;
}

/** A JSON value as it is stored: what goes in comes back out, bit for bit (except -0, which JSON writes as 0). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * The open position ("pending signal") a live bot keeps per strategy and symbol.
 * Fields not listed here are stored and read back unchanged, as long as they are plain JSON.
 */
export interface ISignalRow {
  /** Unique id of the signal; must not be empty. */
  id: string;
  position: SignalPosition;
  /** Entry price; finite and greater than 0. */
  priceOpen: number;
  /** Take-profit price; finite and greater than 0. */
  priceTakeProfit: number;
  /** Stop-loss price; finite and greater than 0. */
  priceStopLoss: number;
  /** When the position opened, in milliseconds since the epoch. */
  openTimestamp: number;
  /** Expected lifetime of the position, in minutes. */
  minuteEstimatedTime: number;
  symbol?: string;
  strategyName?: string;
  exchangeName?: string;
  note?: string;
  /** Cost of the position in quote currency. */
  cost?: number;
  /** When the signal was scheduled, in milliseconds since the epoch. */
  scheduledAt?: number;
  /** When the signal became pending, in milliseconds since the epoch. */
  pendingAt?: number;
  /** Partial closes applied so far. */
  partialCloses?: ISignalPartialClose[];
  [extra: string]: unknown;
}

type Problem = string | undefined;

function positivePrice(value: unknown): Problem {
  if (typeof value !== "number") return `must be a number, got ${describe(value)}`;
  if (!Number.isFinite(value)) return `must be finite, got ${value}`;
  if (value <= 0) return `must be greater than 0, got ${value}`;
  return undefined;
}

function finiteNumber(value: unknown): Problem {
  if (typeof value !== "number") return `must be a number, got ${describe(value)}`;
  if (!Number.isFinite(value)) return `must be finite, got ${value}`;
  return undefined;
}

function nonNegativeNumber(value: unknown): Problem {
  const problem = finiteNumber(value);
  if (problem !== undefined) return problem;
  return (value as number) < 0 ? `must not be negative, got ${value}` : undefined;
}

function string(value: unknown): Problem {
  return typeof value === "string" ? undefined : `must be a string, got ${describe(value)}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value;
}

const REQUIRED_FIELDS: Record<string, (value: unknown) => Problem> = {
  id: (value) => string(value) ?? (value === "" ? "must not be empty" : undefined),
  position: (value) =>
    value === "long" || value === "short" ? undefined : `must be "long" or "short", got ${describe(value)}`,
  priceOpen: positivePrice,
  priceTakeProfit: positivePrice,
  priceStopLoss: positivePrice,
  openTimestamp: finiteNumber,
  minuteEstimatedTime: nonNegativeNumber,
};

const OPTIONAL_FIELDS: Record<string, (value: unknown) => Problem> = {
  symbol: string,
  strategyName: string,
  exchangeName: string,
  note: string,
  cost: finiteNumber,
  scheduledAt: finiteNumber,
  pendingAt: finiteNumber,
  partialCloses: partialCloses,
};

const REQUIRED_CHECKS = Object.entries(REQUIRED_FIELDS);
const OPTIONAL_CHECKS = Object.entries(OPTIONAL_FIELDS);

function partialCloses(value: unknown): Problem {
  if (!Array.isArray(value)) return `must be an array, got ${describe(value)}`;
  for (const [index, close] of value.entries()) {
    if (typeof close !== "object" || close === null) return `[${index}] must be an object`;
    const entry = close as Record<string, unknown>;
    if (entry.type !== "profit" && entry.type !== "loss") return `[${index}].type must be "profit" or "loss"`;
    const percent = nonNegativeNumber(entry.percent);
    if (percent !== undefined) return `[${index}].percent ${percent}`;
    const price = positivePrice(entry.price);
    if (price !== undefined) return `[${index}].price ${price}`;
  }
  return undefined;
}

/**
 * Why `value` would not come back from JSON exactly as it went in, or `undefined` when it would.
 * `JSON.stringify` turns NaN into null, drops undefined array items' meaning and flattens Dates
 * into strings: each is a silently corrupted record, so each is refused.
 */
function jsonProblem(value: unknown, path: string, depth = 0): Problem {
  if (depth > MAX_ROW_DEPTH) return `${path.slice(0, 120)}... nests deeper than ${MAX_ROW_DEPTH} levels`;
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} must be a finite number, got ${value}`;
    case "object": {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let index = 0; index < value.length; index++) {
          if (value[index] === undefined) return `${path}[${index}] must not be undefined`;
          const problem = jsonProblem(value[index], `${path}[${index}]`, depth + 1);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        return `${path} must be a plain object, got ${prototype?.constructor?.name ?? "an object"}`;
      }
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined) continue; // dropped by JSON, like an absent optional field
        const problem = jsonProblem(item, `${path}.${key}`, depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return `${path} must be JSON data, got ${typeof value}`;
  }
}

/** Why `row` is not a valid {@link ISignalRow}, or `undefined` when it is. */
export function signalRowProblem(row: unknown): string | undefined {
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    return `signal must be an object, got ${describe(row)}`;
  }
  const fields = row as Record<string, unknown>;
  for (const [name, check] of REQUIRED_CHECKS) {
    const problem = check(fields[name]);
    if (problem !== undefined) return `${name} ${problem}`;
  }
  for (const [name, check] of OPTIONAL_CHECKS) {
    if (fields[name] === undefined) continue;
    const problem = check(fields[name]);
    if (problem !== undefined) return `${name}${problem.startsWith("[") ? "" : " "}${problem}`;
  }
  // The quick check allocates nothing; the one that builds a path runs only to explain a failure.
  return isPlainJson(row) ? undefined : jsonProblem(row, "signal");
}

/** How deep a row's values may nest: deeper rows are refused, so no check or copy runs out of stack. */
export const MAX_ROW_DEPTH = 64;

function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > MAX_ROW_DEPTH) return false;
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object": {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let index = 0; index < value.length; index++) {
          if (value[index] === undefined || !isPlainJson(value[index], depth + 1)) return false;
        }
        return true;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return false;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const item = (value as Record<string, unknown>)[key];
        if (item !== undefined && !isPlainJson(item, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** True when `row` is a valid {@link ISignalRow}. */
export function isSignalRow(row: unknown): row is ISignalRow {
  return signalRowProblem(row) === undefined;
}

/** Throws {@link InvalidSignalError} unless `row` is a valid {@link ISignalRow}. */
export function assertSignalRow(row: unknown, context: PersistErrorContext): asserts row is ISignalRow {
  const problem = signalRowProblem(row);
  if (problem !== undefined) throw new InvalidSignalError(problem, context);
}

/** The stored form of a row: JSON text. Validate first with {@link assertSignalRow}, or use {@link signalRowText}. */
export function serializeSignalRow(row: ISignalRow): string {
  return JSON.stringify(row);
}

/**
 * Validates `row` and returns the JSON text to store, checked again as it will be read back: a
 * getter that answers differently the second time, a Proxy or a non-enumerable field can pass
 * the first check and still change what is stored. Throws {@link InvalidSignalError}.
 */
export function signalRowText(row: unknown, context: PersistErrorContext): string {
  return checkedSignalRow(row, context).json;
}

/**
 * {@link signalRowText} with the row as it will be read back: a fresh copy nobody else holds.
 * @internal
 */
export function checkedSignalRow(row: unknown, context: PersistErrorContext): { json: string; stored: ISignalRow } {
  assertSignalRow(row, context);
  let json: string;
  let stored: unknown;
  try {
    json = JSON.stringify(row);
    stored = JSON.parse(json);
  } catch (error) {
    throw new InvalidSignalError(`the row cannot be stored as JSON (${errorMessage(error)})`, {
      ...context,
      cause: error,
    });
  }
  const problem = signalRowProblem(stored);
  if (problem !== undefined) {
    throw new InvalidSignalError(
      `what would be stored is not a valid signal (${problem}); the row changed while it was read`,
      context,
    );
  }
  return { json, stored: stored as ISignalRow };
}

/**
 * Parses stored JSON text back into a row. Text that does not parse, or parses into something
 * that is not a valid row, throws {@link CorruptDataError}; `location` names where it was found.
 */
export function parseSignalRow(text: string, context: PersistErrorContext, location?: string): ISignalRow {
  let row: unknown;
  try {
    row = JSON.parse(text);
  } catch (error) {
    throw corrupt(`stored data is not JSON (${errorMessage(error)})`, context, location, error);
  }
  return checkStoredSignalRow(row, context, location);
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes stored bytes as UTF-8, strictly: bytes that are not UTF-8 throw
 * {@link CorruptDataError} (a lenient decoder would turn them into U+FFFD, a silently altered
 * row); `location` names where they were found.
 */
export function decodeStoredText(bytes: Uint8Array, context: PersistErrorContext, location: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch (error) {
    throw new CorruptDataError(`stored data is not UTF-8 in ${location}; it was left in place`, {
      ...context,
      cause: error,
    });
  }
}

/** Validates a row a backend read back; an invalid one throws {@link CorruptDataError}. */
export function checkStoredSignalRow(row: unknown, context: PersistErrorContext, location?: string): ISignalRow {
  const problem = signalRowProblem(row);
  if (problem !== undefined) throw corrupt(`stored data is not a valid signal (${problem})`, context, location);
  return row as ISignalRow;
}

function corrupt(message: string, context: PersistErrorContext, location: string | undefined, cause?: unknown) {
  const where = location === undefined ? "" : ` in ${location}`;
  return new CorruptDataError(`${message}${where}; it was left in place`, { ...context, cause });
}
