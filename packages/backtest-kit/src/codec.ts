import { CorruptDataError, InvalidSignalError, MAX_ROW_DEPTH, type PersistErrorContext } from "@persist-kit/core";

/** Where a value held `Infinity`: keys and array indexes from the top of the value. */
type Path = (string | number)[];

// The one field the framework gives Infinity (an "eternal hold") and reads back from null.
const INFINITY_FIELD = "minuteEstimatedTime";
const FORMAT = 1;

/**
 * The stored text of a value the framework wrote: `{"v":1,"value":...}`, plus `"infinity":[paths]`
 * when `minuteEstimatedTime` was `Infinity` somewhere (stored as null at those paths and restored
 * on read, so a null the framework wrote stays null). The value is copied as it is checked, each
 * property read once, and the copy is what is stored: a getter or Proxy cannot answer
 * differently later. Refused with {@link InvalidSignalError}, nothing written: NaN, -Infinity,
 * Infinity anywhere else, undefined array items, bigint, functions, symbols, Dates and other
 * objects that are not plain, and nesting deeper than 64 levels; JSON would change each of them.
 * A property whose value is undefined is left out, as JSON does (an absent optional field), and
 * -0 is stored as 0 (JSON has no -0; the two are equal with `===`).
 * @example encodeValue({ id: "a", minuteEstimatedTime: Infinity }, context) // '{"v":1,"value":{"id":"a","minuteEstimatedTime":null},"infinity":[["minuteEstimatedTime"]]}'
 */
export function encodeValue(value: unknown, context: PersistErrorContext): string {
  const infinity: Path[] = [];
  let copy: unknown;
  try {
    copy = copyValue(value, [], infinity, context);
  } catch (error) {
    if (error instanceof InvalidSignalError) throw error;
    // A getter or Proxy of the caller's that throws while the value is read.
    throw new InvalidSignalError(
      `reading the value threw (${(error as Error)?.message ?? String(error)}); nothing was written`,
      {
        ...context,
        cause: error,
      },
    );
  }
  try {
    return JSON.stringify(infinity.length === 0 ? { v: FORMAT, value: copy } : { v: FORMAT, value: copy, infinity });
  } catch (error) {
    // Longer than a JavaScript string can be.
    throw new InvalidSignalError(
      `the value cannot be stored as JSON (${(error as Error).message}); nothing was written`,
      {
        ...context,
        cause: error,
      },
    );
  }
}

/** The value of a stored text, `Infinity` restored where it was written: {@link CorruptDataError} if it is not one. */
export function decodeValue(text: string, context: PersistErrorContext): unknown {
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (error) {
    throw new CorruptDataError("the stored value is not JSON; it was left in place", { ...context, cause: error });
  }
  if (!isEnvelope(stored)) {
    throw new CorruptDataError(
      `the stored value is not a backtest-kit value of format ${FORMAT}; it was left in place`,
      context,
    );
  }
  for (const path of stored.infinity ?? []) restoreInfinity(stored.value, path, context);
  return stored.value;
}

interface Envelope {
  v: number;
  value: unknown;
  infinity?: Path[];
}

function isEnvelope(stored: unknown): stored is Envelope {
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) return false;
  const { v, infinity } = stored as Record<string, unknown>;
  if (v !== FORMAT || !Object.hasOwn(stored, "value")) return false;
  if (infinity === undefined) return true;
  return (
    Array.isArray(infinity) &&
    infinity.every(
      (path) =>
        Array.isArray(path) &&
        path.length > 0 &&
        path.every((step) => typeof step === "string" || Number.isSafeInteger(step)),
    )
  );
}

function restoreInfinity(value: unknown, path: Path, context: PersistErrorContext): void {
  let holder: unknown = value;
  for (const step of path.slice(0, -1)) holder = ownValue(holder, step);
  const last = path[path.length - 1] as string | number;
  if (last !== INFINITY_FIELD || ownValue(holder, last) !== null) {
    throw new CorruptDataError(
      `the stored value marks ${JSON.stringify(path)} as Infinity, which it cannot be; it was left in place`,
      context,
    );
  }
  (holder as Record<string, unknown>)[last] = Number.POSITIVE_INFINITY;
}

function ownValue(holder: unknown, step: string | number): unknown {
  if (typeof holder !== "object" || holder === null || !Object.hasOwn(holder, step)) return undefined;
  return (holder as Record<string | number, unknown>)[step];
}

function copyValue(value: unknown, path: Path, infinity: Path[], context: PersistErrorContext): unknown {
  if (path.length > MAX_ROW_DEPTH) refuse(`${describePath(path)} nests deeper than ${MAX_ROW_DEPTH} levels`, context);
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (Number.isFinite(value)) return value;
      if (value === Number.POSITIVE_INFINITY && path[path.length - 1] === INFINITY_FIELD) {
        infinity.push([...path]);
        return null;
      }
      return refuse(`${describePath(path)} is ${value}; only ${INFINITY_FIELD} may be Infinity`, context);
    case "object": {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const items: unknown[] = [];
        for (let index = 0; index < value.length; index++) {
          const item: unknown = value[index];
          if (item === undefined) refuse(`${describePath([...path, index])} is undefined`, context);
          items.push(copyValue(item, [...path, index], infinity, context));
        }
        return items;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        refuse(`${describePath(path)} is a ${prototype?.constructor?.name ?? "object"}, not plain data`, context);
      }
      const copy: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        const item: unknown = (value as Record<string, unknown>)[key];
        if (item === undefined) continue;
        // defineProperty: a key "__proto__" stays a key, never the copy's prototype.
        Object.defineProperty(copy, key, {
          value: copyValue(item, [...path, key], infinity, context),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return copy;
    }
    default:
      return refuse(`${describePath(path)} is a ${typeof value}, not JSON data`, context);
  }
}

function describePath(path: Path): string {
  const shown = path.slice(0, 8).map((step) => (typeof step === "number" ? `[${step}]` : `.${step}`));
  return `the value${shown.join("")}${path.length > 8 ? "..." : ""}`;
}

function refuse(problem: string, context: PersistErrorContext): never {
  throw new InvalidSignalError(`${problem}; nothing was written`, context);
}
