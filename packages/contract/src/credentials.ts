// Checks that no password shows, for the credential tests of every backend: a password of random
// printable ASCII, and every place an error could show a piece of it.
import { inspect } from "node:util";
import fc from "fast-check";

const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, index) => String.fromCharCode(0x20 + index));
const ALPHANUMERIC = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"];

/** A password and the random alphanumeric core it was built around. */
export interface TestPassword {
  password: string;
  core: string;
}

/**
 * A password of printable ASCII, every character possible, around a random alphanumeric core of
 * 10 characters: any piece of the password long enough to be told apart from ordinary text, the
 * core included, must never show.
 */
export const passwordArbitrary: fc.Arbitrary<TestPassword> = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...PRINTABLE), maxLength: 16 }),
    fc.string({ unit: fc.constantFrom(...ALPHANUMERIC), minLength: 10, maxLength: 10 }),
    fc.string({ unit: fc.constantFrom(...PRINTABLE), maxLength: 16 }),
  )
  .map(([before, core, after]) => ({ password: `${before}${core}${after}`, core }));

/**
 * The texts a secret must never appear in: `util.inspect` of the value (hidden properties and the
 * whole cause chain included), its JSON, and the message and stack of every error it holds.
 */
export function visibleTexts(value: unknown): string[] {
  return [
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
    safeJson(value),
    ...errorChain(value).flatMap((error) => [String(error.message ?? ""), String(error.stack ?? ""), String(error)]),
  ];
}

/**
 * The pieces of a password that must not show: itself, its encoded form, its core, and every
 * 8-character piece varied enough (5 distinct characters) not to occur in ordinary text.
 */
export function secretPieces({ password, core }: TestPassword): string[] {
  const pieces = new Set([password, encodeURIComponent(password), core]);
  for (let start = 0; start + 8 <= password.length; start++) {
    const piece = password.slice(start, start + 8);
    if (new Set(piece).size >= 5) pieces.add(piece);
  }
  return [...pieces];
}

/** Throws, naming the piece and where it showed, when any piece of `secrets` shows in `value`. */
export function expectNothingSecret(value: unknown, secrets: readonly TestPassword[], what: string): void {
  const texts = visibleTexts(value).map(withoutFrames);
  for (const secret of secrets) {
    for (const piece of secretPieces(secret)) {
      for (const text of texts) {
        if (text.includes(piece)) throw new Error(`${what}: ${JSON.stringify(piece)} shows in ${JSON.stringify(text)}`);
      }
    }
  }
}

// A stack frame names code (functions, files), never data: a password piece such as "Property"
// would otherwise be found in a frame like `AsyncProperty.run`. Frames are dropped as plain lines
// of a stack, as quoted lines of util.inspect's output, and inside a one-line escaped string.
function withoutFrames(text: string): string {
  return text.replace(/^\s*'?\s*at \S.*$/gm, "").replace(/\\n\s*at [^\\'"`]*/g, "");
}

function errorChain(value: unknown, seen = new Set<unknown>()): { message?: unknown; stack?: unknown }[] {
  if (typeof value !== "object" || value === null || seen.has(value)) return [];
  seen.add(value);
  const error = value as { cause?: unknown; previousErrors?: unknown; lastNodeError?: unknown; errors?: unknown };
  const inner = [error.cause, error.lastNodeError, ...listOf(error.previousErrors), ...listOf(error.errors)];
  return [value as { message?: unknown }, ...inner.flatMap((next) => errorChain(next, seen))];
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

// A driver's error may hold a socket or a cycle: what JSON cannot show, it cannot leak.
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return "";
  }
}
